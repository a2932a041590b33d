import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { isPortFree } from './free-port.js';
import { answersOk, spawnManaged, waitFor } from './managed-process.js';
import type { ManagedProcess } from './managed-process.js';

/** Options for {@link startChromaServer}. */
export interface ChromaServerOptions {
  port: number;
  /** Chroma's persistence directory; created when missing. */
  dataDir: string;
  logFile?: string;
  /** How long to wait for the heartbeat (default 60_000 ms). */
  startTimeoutMs?: number;
  /** Stop with this process even if it is killed (see `spawnManaged`); for `npm start`. */
  dieWithParent?: boolean;
}

/** A running managed Chroma server. */
export type ChromaServer = ManagedProcess & { readonly url: string };

/** Starts the chromadb package's `chroma run` on 127.0.0.1 and resolves once it heartbeats. */
export async function startChromaServer(options: ChromaServerOptions): Promise<ChromaServer> {
  const { port, logFile } = options;
  const cli = await chromaCliPath();
  // Another server on the port would answer our heartbeat and hide our own failed bind.
  if (!(await isPortFree(port))) {
    throw new Error(
      `Port ${port} on 127.0.0.1 is in use (a Chroma from an earlier run?): stop that process or set CHROMA_URL.`,
    );
  }
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });

  // --host: the default 'localhost' may resolve to ::1 while clients here dial 127.0.0.1.
  const args = [cli, 'run', '--path', dataDir, '--host', '127.0.0.1', '--port', String(port)];
  const child = spawnManaged('chroma', process.execPath, args, {
    logFile,
    dieWithParent: options.dieWithParent,
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(answersOk(`${url}/api/v2/heartbeat`), {
      timeoutMs: options.startTimeoutMs ?? 60_000,
      what: `chroma on port ${port}`,
      exited: child.exited,
      logFile,
    });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return Object.assign(child, { url });
}

/** The absolute path of the `chroma` CLI shipped in the chromadb npm package. */
export async function chromaCliPath(): Promise<string> {
  // chromadb's `exports` hides package.json, so resolve its entry point and walk up to the package.
  const entry = createRequire(import.meta.url).resolve('chromadb');
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    const manifest = await readJson(join(dir, 'package.json'));
    if (manifest?.name === 'chromadb') {
      const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.chroma;
      if (bin === undefined) throw new Error(`${dir}/package.json declares no chroma bin`);
      return join(dir, bin);
    }
    if (dirname(dir) === dir)
      throw new Error(`could not find chromadb's package.json above ${entry}`);
  }
}

interface PackageManifest {
  name?: string;
  bin?: string | Record<string, string>;
}

async function readJson(file: string): Promise<PackageManifest | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PackageManifest;
  } catch {
    return undefined;
  }
}
