import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError, NamePattern } from '@askq/shared';

/** Tenants by API key, parsed from `API_KEYS` (`tenant:key,tenant:key`); keys kept as digests. */
export type ApiKeys = ReadonlyArray<{ tenant: string; key: Buffer }>;

/** A key's SHA-256: what is compared, so every comparison is of 32 bytes whatever the key's length. */
export function keyDigest(key: string | Buffer): Buffer {
  return createHash('sha256').update(key).digest();
}

/**
 * Parses `API_KEYS`; throws with every malformed entry named (never the key itself), and when two
 * tenants share a key: a request with it would be one tenant's or the other's by list order.
 */
export function parseApiKeys(value: string | undefined): ApiKeys {
  if (!value) return [];
  const problems: string[] = [];
  const keys = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .flatMap((entry, i) => {
      const colon = entry.indexOf(':');
      const tenant = entry.slice(0, colon);
      const key = entry.slice(colon + 1);
      if (colon < 1 || !NamePattern.test(tenant) || key.length < 16) {
        problems.push(
          `entry ${i + 1} must be tenant:key with a tenant name and a key of 16+ characters`,
        );
        return [];
      }
      return [{ tenant, key: keyDigest(key), entry: i + 1 }];
    });
  const owners = new Map<string, { tenant: string; entry: number }>();
  for (const { tenant, key, entry } of keys) {
    const owner = owners.get(key.toString('hex'));
    if (owner && owner.tenant !== tenant) {
      problems.push(`entries ${owner.entry} and ${entry} give one key to two tenants`);
    }
    owners.set(key.toString('hex'), { tenant, entry });
  }
  if (problems.length > 0) throw new Error(`API_KEYS: ${problems.join('; ')}`);
  return keys.map(({ tenant, key }) => ({ tenant, key }));
}

/**
 * Whether a presented key is the expected one (given as its {@link keyDigest}). The digests are
 * compared in constant time, and always 32 bytes long: neither how much of a key was right nor
 * how long the right key is shows in the response time.
 */
export function sameKey(presented: Buffer | string, expected: Buffer): boolean {
  return timingSafeEqual(keyDigest(presented), expected);
}

/**
 * Resolves the tenant of a request into `res.locals.tenant` (SPEC 2). With no keys configured,
 * auth is off and everything is tenant `default`. Every key is compared, whichever matches, so
 * the time taken does not tell which tenant's key was close.
 */
export function authenticate(keys: ApiKeys): RequestHandler {
  return (req, res, next) => {
    if (keys.length === 0) {
      res.locals.tenant = 'default';
      next();
      return;
    }
    const header = req.get('authorization') ?? '';
    const presented = /^Bearer (.+)$/i.exec(header)?.[1] ?? '';
    let tenant: string | undefined;
    for (const entry of keys) {
      if (sameKey(presented, entry.key)) tenant = entry.tenant;
    }
    if (!tenant) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="askq"');
      next(new AppError('UNAUTHORIZED', 'send a valid API key as Authorization: Bearer <key>'));
      return;
    }
    res.locals.tenant = tenant;
    next();
  };
}
