import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../../scripts/lib/free-port.js';
import { spawnManaged, waitFor, type ManagedProcess } from '../../scripts/lib/managed-process.js';
import { findOnPath } from '../../scripts/lib/redis-server.js';

const run = promisify(execFile);

/** One redis-server of a test cluster. */
export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  readonly process: ManagedProcess;
}

/** A real Redis Cluster on loopback ports: masters with one replica each. */
export interface TestRedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's URL, as REDIS_URL lists them. */
  readonly urls: string[];
  /** The node currently serving `key` as master. */
  masterOf(key: string): Promise<ClusterNode>;
  /** Kills a node with SIGKILL, as a crash would. */
  kill(node: ClusterNode): Promise<void>;
  /** Resolves once a replica serves every slot of the dead node and the cluster is `ok` again. */
  waitForFailover(dead: ClusterNode, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `masters * 2` redis-servers in cluster mode and joins them with `redis-cli --cluster
 * create`, one replica per master. A short node timeout makes a failover take seconds.
 */
export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const server = await findOnPath('redis-server');
  const cli = await findOnPath('redis-cli');
  if (!server || !cli) throw new Error('redis-server and redis-cli must be on PATH');
  const dir = await mkdtemp(join(tmpdir(), 'askq-cluster-'));
  const nodes: ClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.process.stop(2_000)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    while (ports.length < masters * 2) {
      const port = await freePort();
      // The cluster bus listens on port + 10000: that one must be free as well.
      if (!ports.includes(port) && port + 10_000 <= 65_535) ports.push(port);
    }
    for (const port of ports) {
      const args = [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dir,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '1000',
        '--appendonly', 'yes',
        '--appendfilename', `appendonly-${port}.aof`,
        '--appenddirname', `aof-${port}`,
        '--save', '',
        '--daemonize', 'no',
      ]; // prettier-ignore
      const child = spawnManaged(`redis-${port}`, server, args, {
        logFile: join(dir, `redis-${port}.log`),
      });
      nodes.push({ port, url: `redis://127.0.0.1:${port}`, process: child });
    }
    for (const node of nodes) {
      await waitFor(async () => (await query(node.port, (r) => r.ping())) === 'PONG', {
        timeoutMs: 20_000,
        what: `redis-server on port ${node.port}`,
        exited: node.process.exited,
      });
    }
    await run(cli, [
      '--cluster', 'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas', '1',
      '--cluster-yes',
    ]); // prettier-ignore
    // Ready when every node sees the whole cluster healthy and every replica has synced.
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => settled(n, nodes.length)))).every(Boolean),
      {
        timeoutMs: 30_000,
        what: 'the Redis Cluster to settle',
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const nodeOn = (port: number) => nodes.find((node) => node.port === port)!;
  const alive = () => nodes.filter((node) => !killed.has(node));
  const killed = new Set<ClusterNode>();

  return {
    nodes,
    urls: nodes.map((node) => node.url),
    async masterOf(key) {
      const port = alive()[0]!.port;
      const slot = await query(port, (r) => r.cluster('KEYSLOT', key));
      const ranges = await query(port, (r) => r.cluster('SLOTS'));
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      const master = range?.[2];
      if (!master) throw new Error(`no node serves slot ${slot}`);
      return nodeOn(master[1]);
    },
    async kill(node) {
      killed.add(node);
      process.kill(node.process.pid, 'SIGKILL');
      await node.process.exited;
    },
    async waitForFailover(dead, timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const states = await Promise.all(
            alive().map(async (node) => {
              const info = await query(node.port, (r) => r.cluster('INFO'));
              const view = String(await query(node.port, (r) => r.cluster('NODES')));
              const deadLine = view.split('\n').find((line) => line.includes(`:${dead.port}@`));
              return /cluster_state:ok/.test(info) && /\bfail\b/.test(deadLine ?? '');
            }),
          );
          return states.every(Boolean);
        },
        { timeoutMs, what: `a replica to take over from port ${dead.port}` },
      );
    },
    stop,
  };
}

/** Healthy: the cluster is `ok` from this node's view and, for a replica, its link is up. */
async function settled(node: ClusterNode, size: number): Promise<boolean> {
  const info = await query(node.port, (r) => r.cluster('INFO'));
  if (!/cluster_state:ok/.test(info) || !info.includes(`cluster_known_nodes:${size}\r`)) {
    return false;
  }
  const replication = await query(node.port, (r) => r.info('replication'));
  return /role:master/.test(replication) || /master_link_status:up/.test(replication);
}

/** One command on a direct, short-lived connection to a node. */
async function query<T>(port: number, command: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}
