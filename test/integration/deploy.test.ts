import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// The deployment files checked by the tools that will read them. There is no Docker engine
// here, so the compose file is checked by docker-compose's own parser, not by running it.
const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

async function ok(command: string, args: string[], env: Record<string, string> = {}) {
  const { stdout, stderr } = await run(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
  });
  return stdout + stderr;
}

it('promtool accepts the Prometheus config and its rules', async () => {
  const output = await ok('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml']);
  expect(output).toMatch(/SUCCESS/);
  expect(await ok('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml'])).toMatch(
    /SUCCESS: \d+ rules found/,
  );
});

it('the alert rules fire, and stay quiet, as their unit tests say', async () => {
  expect(await ok('promtool', ['test', 'rules', 'deploy/prometheus/alerts.test.yml'])).toMatch(
    /SUCCESS/,
  );
});

it('docker-compose accepts the compose file', async () => {
  const output = await ok('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    GRAFANA_ADMIN_PASSWORD: 'a-password-of-yours',
  });
  for (const service of ['redis', 'chroma', 'api', 'worker', 'prometheus', 'grafana', 'ollama']) {
    expect(output).toMatch(new RegExp(`^  ${service}:$`, 'm'));
  }
  // Redis keeps what BullMQ needs: an append-only file, and no eviction of queue keys.
  expect(output).toMatch(/- --appendonly\n\s+- "yes"/);
  expect(output).toMatch(/- --maxmemory-policy\n\s+- noeviction/);
  // Two workers, and a grace period longer than a question may run.
  expect(output).toMatch(/replicas: 2/);
});

it('docker-compose publishes on 127.0.0.1 only, and has no default Grafana password', async () => {
  const output = await ok('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    GRAFANA_ADMIN_PASSWORD: 'a-password-of-yours',
    ASKQ_PUBLISH_ADDRESS: '',
  });
  const published = [...output.matchAll(/^ {4}- (\S+):\d+:\d+\/tcp$/gm)].map((m) => m[1]);
  // api, grafana, ollama and prometheus; the workers publish nothing.
  expect(published).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
  // Prometheus' lifecycle API (remote shutdown and reload) stays off.
  expect(output).not.toContain('web.enable-lifecycle');
  // Without a password of the operator's own, compose refuses to start Grafana at all.
  const refused = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    cwd: root,
    env: { ...process.env, GRAFANA_ADMIN_PASSWORD: '' },
  }).catch((e: { stderr?: string }) => e);
  expect(refused.stderr).toMatch(/GRAFANA_ADMIN_PASSWORD/);
  // Exposing the API is one variable away, for a deployment that set API_KEYS.
  const exposed = await ok('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    GRAFANA_ADMIN_PASSWORD: 'a-password-of-yours',
    ASKQ_PUBLISH_ADDRESS: '0.0.0.0',
  });
  expect(exposed).toMatch(/^ {4}- 0\.0\.0\.0:3000:3000\/tcp$/m);
});
