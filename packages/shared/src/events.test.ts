import { describe, expect, it } from 'vitest';
import { compareEventIds, decodePublished, isEventId, TERMINAL_EVENTS } from './events.js';

describe('isEventId', () => {
  it('accepts Redis stream ids', () => {
    expect(isEventId('0-0')).toBe(true);
    expect(isEventId('1700000000000-0')).toBe(true);
    expect(isEventId('1700000000000-42')).toBe(true);
  });

  it('rejects anything else', () => {
    for (const value of [
      '',
      '1',
      '1-',
      '-1',
      '1-2-3',
      'a-1',
      '1-a',
      ' 1-0',
      '1-0 ',
      '1-0\n',
      '$',
    ]) {
      expect(isEventId(value), JSON.stringify(value)).toBe(false);
    }
    expect(isEventId('12345678901234567-0')).toBe(false);
  });
});

describe('compareEventIds', () => {
  it('orders by milliseconds first, then by sequence', () => {
    expect(compareEventIds('1-5', '2-0')).toBeLessThan(0);
    // Beyond 2^53 a Number comparison would call these equal.
    expect(compareEventIds('9007199254740993-0', '9007199254740992-0')).toBeGreaterThan(0);
    expect(compareEventIds('2-0', '1-5')).toBeGreaterThan(0);
    expect(compareEventIds('5-1', '5-2')).toBeLessThan(0);
    expect(compareEventIds('5-2', '5-1')).toBeGreaterThan(0);
    expect(compareEventIds('5-2', '5-2')).toBe(0);
  });

  it('compares numerically, not lexicographically', () => {
    expect(compareEventIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareEventIds('10-0', '9-0')).toBeGreaterThan(0);
    expect(compareEventIds('5-2', '5-10')).toBeLessThan(0);
    expect(compareEventIds('5-10', '5-2')).toBeGreaterThan(0);
  });

  it('sorts a list of ids like Redis does', () => {
    const ids = ['10-0', '9-1', '9-10', '1700000000000-0', '9-2', '100-0'];
    expect([...ids].sort(compareEventIds)).toEqual([
      '9-1',
      '9-2',
      '9-10',
      '10-0',
      '100-0',
      '1700000000000-0',
    ]);
  });
});

describe('decodePublished', () => {
  it('splits id, previous id, event and data', () => {
    expect(decodePublished('2-0\n1-0\nstatus\n{"status":"queued","attempt":1}')).toEqual({
      id: '2-0',
      prev: '1-0',
      event: 'status',
      data: '{"status":"queued","attempt":1}',
    });
  });

  it('leaves prev out for the first event of a log', () => {
    expect(decodePublished('1-0\n\nstatus\n{}')).toEqual({
      id: '1-0',
      event: 'status',
      data: '{}',
    });
  });

  it('keeps newlines inside the data (round trip of the published format)', () => {
    const event = { id: '1700000000000-3', event: 'token', data: 'line one\nline two\n\nend\n' };
    const message = `${event.id}\n1700000000000-2\n${event.event}\n${event.data}`;
    expect(decodePublished(message)).toEqual({ ...event, prev: '1700000000000-2' });
  });

  it('accepts empty data', () => {
    expect(decodePublished('7-1\n7-0\ncancelled\n')).toEqual({
      id: '7-1',
      prev: '7-0',
      event: 'cancelled',
      data: '',
    });
  });

  it('returns undefined for malformed messages', () => {
    expect(decodePublished('')).toBeUndefined();
    expect(decodePublished('1-0')).toBeUndefined();
    expect(decodePublished('1-0\nstatus')).toBeUndefined();
    expect(decodePublished('1-0\n\nstatus')).toBeUndefined();
  });
});

describe('TERMINAL_EVENTS', () => {
  it('holds exactly completed, failed and cancelled', () => {
    expect([...TERMINAL_EVENTS].sort()).toEqual(['cancelled', 'completed', 'failed']);
  });
});
