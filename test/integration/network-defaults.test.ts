import { readFile } from 'node:fs/promises';
import { expect, inject, it } from 'vitest';
import { loadConfig } from '@askq/shared';
import { ApiConfig } from '../../apps/api/src/config.js';
import { startApi } from '../../apps/api/src/server.js';
import { pino } from 'pino';
import { startAskq } from '../support/askq.js';

// SPEC 7: with auth off (no API_KEYS) the API and the worker's metrics server listen on 127.0.0.1
// unless HOST says otherwise, and the start log says how to expose them. Checked against the
// kernel's own table of listening sockets, not the processes' word for it.

/** The local addresses the kernel has listening on `port` (IPv4 and IPv6). */
async function listeningOn(port: number): Promise<string[]> {
  const addresses: string[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    const table = await readFile(file, 'utf8').catch(() => '');
    for (const line of table.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== '0A') continue; // 0A: LISTEN
      const [hex, portHex] = local.split(':');
      if (Number.parseInt(portHex ?? '', 16) !== port) continue;
      addresses.push(v6 ? `[${hex}]` : ipv4(hex!));
    }
  }
  return addresses;
}

/** /proc/net/tcp writes an IPv4 address as one little-endian hex word. */
function ipv4(hex: string): string {
  const bytes = hex.match(/../g)!.map((b) => Number.parseInt(b, 16));
  return bytes.reverse().join('.');
}

it('with auth off, the API and the worker listen on 127.0.0.1 only, and the log says how to expose them', async () => {
  // HOST empty counts as unset, like every variable.
  const askq = await startAskq({ env: { HOST: '' }, captureLogs: true });
  try {
    expect(await listeningOn(askq.api.port)).toEqual(['127.0.0.1']);
    expect(await listeningOn(askq.worker!.metricsPort)).toEqual(['127.0.0.1']);
    const hints = askq.logs.map((l) => String(l.msg)).join('\n');
    expect(hints).toMatch(/auth is off/);
    expect(hints).toMatch(/HOST=0\.0\.0\.0/);
    expect(askq.logs.find((l) => l.msg === 'api listening')).toMatchObject({ host: '127.0.0.1' });
  } finally {
    await askq.stop();
  }
});

it('with API_KEYS set, or with HOST, they listen where told', async () => {
  const askq = await startAskq({
    env: { HOST: '', API_KEYS: 'acme:a-key-of-sixteen-chars-or-more' },
  });
  try {
    expect(await listeningOn(askq.api.port)).toEqual(['0.0.0.0']);
    expect(await listeningOn(askq.worker!.metricsPort)).toEqual(['0.0.0.0']);
  } finally {
    await askq.stop();
  }
  // Auth off but HOST=0.0.0.0: exposed on purpose, with a warning.
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void logs.push(JSON.parse(l)) });
  const api = await startApi(
    loadConfig(ApiConfig, {
      REDIS_URL: inject('redisUrl'),
      CHROMA_URL: inject('chromaUrl'),
      REDIS_PREFIX: 'exposed',
      PORT: '0',
      HOST: '0.0.0.0',
    }),
    log,
  );
  try {
    expect(await listeningOn(api.port)).toEqual(['0.0.0.0']);
    expect(logs.map((l) => l.msg)).toContain(
      'auth is off and the API is exposed: anyone who reaches it can use it',
    );
  } finally {
    await api.stop('test finished');
  }
});
