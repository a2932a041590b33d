import type { RedisClient } from './redis.js';

/** A Lua script bound to a client: call it with its keys and arguments. */
export type RedisScript<Args extends Array<string | number>, Result> = (
  keys: string[],
  args: Args,
) => Promise<Result>;

/**
 * Registers a Lua script on a client (ioredis runs it by its SHA and loads it on NOSCRIPT, on
 * every node of a cluster) and returns a typed function that calls it. `keys` is how many key
 * arguments the script takes; every key must hash to one slot on a cluster.
 */
export function defineScript<Args extends Array<string | number>, Result>(
  redis: RedisClient,
  name: string,
  spec: { keys: number; lua: string },
): RedisScript<Args, Result> {
  const commands = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  if (typeof commands[name] !== 'function') {
    redis.defineCommand(name, { numberOfKeys: spec.keys, lua: spec.lua });
  }
  return async (keys, args) => {
    if (keys.length !== spec.keys) {
      throw new RangeError(`${name} takes ${spec.keys} keys, was given ${keys.length}`);
    }
    return (await commands[name]!.call(redis, ...keys, ...args)) as Result;
  };
}
