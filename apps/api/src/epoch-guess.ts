import type { CacheEpoch, CacheIdentity } from '@askq/shared';

/** The last cache epoch seen per tenant and collection, a guess that is checked before it is used. */
export function lastEpochs() {
  const seen = new Map<string, CacheEpoch>();
  const nameOf = (identity: CacheIdentity) => `${identity.tenant}\n${identity.collection}`;
  return {
    last: (identity: CacheIdentity) => seen.get(nameOf(identity)),
    remember(identity: CacheIdentity, epoch: CacheEpoch) {
      // Bounded: forgetting only costs the next question of a collection one round trip.
      if (seen.size >= 10_000) seen.clear();
      seen.set(nameOf(identity), epoch);
    },
  };
}
