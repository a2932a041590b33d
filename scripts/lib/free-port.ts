import { createServer } from 'node:net';

/** Returns `preferred` when it can be bound on 127.0.0.1, else a free port chosen by the OS. */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred !== undefined && (await isPortFree(preferred))) return preferred;
  return bindOnce(0);
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
export async function isPortFree(port: number): Promise<boolean> {
  try {
    await bindOnce(port);
    return true;
  } catch {
    return false;
  }
}

// The port is released again before the caller uses it, so another process may take it in between;
// callers that start a server on it must still notice a failed bind (the child exits).
function bindOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      server.close((err) => (err ? reject(err) : resolve(bound)));
    });
  });
}
