import { expect, it } from 'vitest';
import { isCI } from './ci.js';

it('reads CI=true and CI=1 alike, and an empty, 0 or false CI as not CI', () => {
  for (const value of ['true', '1', 'TRUE', 'yes']) expect(isCI({ CI: value }), value).toBe(true);
  for (const value of ['', '0', 'false', ' False ']) expect(isCI({ CI: value }), value).toBe(false);
  expect(isCI({})).toBe(false);
});
