import { describe, expect, it } from 'vitest';
import { keyDigest, parseApiKeys, sameKey } from './auth.js';

describe('parseApiKeys', () => {
  it('refuses one key for two tenants, naming the entries and never the key', () => {
    const key = 'shared-key-0123456789';
    expect(() => parseApiKeys(`alpha:${key},beta:other-key-0123456789,gamma:${key}`)).toThrow(
      /entries 1 and 3 give one key to two tenants/,
    );
    try {
      parseApiKeys(`alpha:${key},gamma:${key}`);
    } catch (e) {
      expect(String(e)).not.toContain(key);
    }
  });

  it('takes a key listed twice for the same tenant, and distinct keys', () => {
    const keys = parseApiKeys(
      'alpha:key-one-0123456789,alpha:key-one-0123456789,beta:key-two-0123456789',
    );
    expect(keys.map((k) => k.tenant)).toEqual(['alpha', 'alpha', 'beta']);
  });
});

describe('sameKey', () => {
  const expected = keyDigest('the-right-key-0123456789');

  it('matches the key only', () => {
    expect(sameKey('the-right-key-0123456789', expected)).toBe(true);
    expect(sameKey('the-right-key-012345678', expected)).toBe(false);
    expect(sameKey('', expected)).toBe(false);
  });

  it('compares digests of one length whatever the key presented, so its length shows nothing', () => {
    // timingSafeEqual throws on buffers of two lengths; comparing digests, it never sees them.
    for (const presented of ['x', 'the-right-key-0123456789', 'y'.repeat(10_000)]) {
      expect(() => sameKey(presented, expected)).not.toThrow();
      expect(keyDigest(presented)).toHaveLength(expected.length);
    }
  });
});
