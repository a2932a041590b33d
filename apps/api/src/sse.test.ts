import { describe, expect, it } from 'vitest';
import { formatSseFrame } from './sse.js';

describe('formatSseFrame', () => {
  it('formats id, event and data and ends with a blank line', () => {
    expect(formatSseFrame({ id: '1-0', event: 'status', data: '{"status":"queued"}' })).toBe(
      'id: 1-0\nevent: status\ndata: {"status":"queued"}\n\n',
    );
  });

  it('writes one data line for empty data', () => {
    expect(formatSseFrame({ id: '2-1', event: 'cancelled', data: '' })).toBe(
      'id: 2-1\nevent: cancelled\ndata: \n\n',
    );
  });

  it('splits multi-line data on \\n, \\r\\n and \\r into several data lines', () => {
    expect(formatSseFrame({ id: '3-0', event: 'token', data: 'a\nb\r\nc\rd' })).toBe(
      'id: 3-0\nevent: token\ndata: a\ndata: b\ndata: c\ndata: d\n\n',
    );
  });

  it('keeps empty lines inside the data', () => {
    expect(formatSseFrame({ id: '3-1', event: 'token', data: 'a\n\nb\n' })).toBe(
      'id: 3-1\nevent: token\ndata: a\ndata: \ndata: b\ndata: \n\n',
    );
  });

  it('never lets data end the frame early', () => {
    const frame = formatSseFrame({
      id: '4-0',
      event: 'token',
      data: 'x\n\nid: 9-9\nevent: failed',
    });
    // The only blank line is the terminator, so the forged lines stay inside this frame's data.
    expect(frame.indexOf('\n\n')).toBe(frame.length - 2);
    expect(frame).toContain('data: id: 9-9\ndata: event: failed\n');
  });

  it.each(['\n', '\r', '\r\n'])('rejects a line break %j in the id or event', (lineBreak) => {
    expect(() =>
      formatSseFrame({ id: `1-0${lineBreak}event: completed`, event: 'status', data: '{}' }),
    ).toThrow(/line breaks/);
    expect(() =>
      formatSseFrame({
        id: '1-0',
        event: `status${lineBreak}data: forged` as 'status',
        data: '{}',
      }),
    ).toThrow(/line breaks/);
  });
});
