import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError, NamePattern } from '@askq/shared';

/** Tenants by API key, parsed from `API_KEYS` (`tenant:key,tenant:key`). */
export type ApiKeys = ReadonlyArray<{ tenant: string; key: Buffer }>;

/** Parses `API_KEYS`; throws with every malformed entry named (never the key itself). */
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
      return [{ tenant, key: Buffer.from(key) }];
    });
  if (problems.length > 0) throw new Error(`API_KEYS: ${problems.join('; ')}`);
  return keys;
}

/** Compares in constant time, so response times do not reveal how much of a key was right. */
export function sameKey(presented: Buffer, expected: Buffer): boolean {
  return presented.length === expected.length && timingSafeEqual(presented, expected);
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
    const presented = Buffer.from(/^Bearer (.+)$/i.exec(header)?.[1] ?? '');
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
