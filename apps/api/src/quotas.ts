import { AppError, INGESTION_LEASE_MS, type Keys, type Leases } from '@askq/shared';

/** A lease on something a tenant holds open; released once. */
export interface Lease {
  release(): Promise<void>;
}

/**
 * The per-tenant quotas on what a tenant holds at once (SPEC 7): open event streams, and
 * ingestions queued or running. Both are leases in Redis, shared by every API process; a stream's
 * lease is renewed while it is open, an ingestion's is released by the worker when it ends, and
 * either expires by itself if its holder dies. Past a quota: 429 RATE_LIMITED with Retry-After.
 */
export interface TenantQuotas {
  openStream(tenant: string, streamId: string): Promise<Lease & { renew(): Promise<void> }>;
  queueIngestion(tenant: string, ingestionId: string): Promise<Lease>;
}

export function createTenantQuotas(deps: {
  leases: Leases;
  keys: Keys;
  maxStreams: number;
  maxQueuedIngestions: number;
  /** A stream's lease lives this long unless renewed (a few heartbeats). */
  streamLeaseMs: number;
}): TenantQuotas {
  const { leases, keys } = deps;
  const refuse = (what: string, max: number, variable: string, retryAfterSeconds: number) =>
    new AppError('RATE_LIMITED', `at most ${max} ${what} at once per tenant (${variable})`, {
      retryAfterSeconds,
    });
  return {
    async openStream(tenant, streamId) {
      const key = keys.tenantStreams(tenant);
      if (!(await leases.acquire(key, streamId, deps.maxStreams, deps.streamLeaseMs))) {
        throw refuse('open event streams', deps.maxStreams, 'TENANT_MAX_STREAMS', 5);
      }
      let released = false;
      return {
        renew: () =>
          released ? Promise.resolve() : leases.renew(key, streamId, deps.streamLeaseMs),
        release: () => {
          released = true;
          return leases.release(key, streamId);
        },
      };
    },

    async queueIngestion(tenant, ingestionId) {
      const key = keys.tenantIngestions(tenant);
      if (!(await leases.acquire(key, ingestionId, deps.maxQueuedIngestions, INGESTION_LEASE_MS))) {
        throw refuse(
          'ingestions queued or running',
          deps.maxQueuedIngestions,
          'TENANT_MAX_QUEUED_INGESTIONS',
          5,
        );
      }
      return { release: () => leases.release(key, ingestionId) };
    },
  };
}
