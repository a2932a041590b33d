import type { Logger } from 'pino';
import { toError } from './errors.js';

/** Releases resources in reverse order of creation, under one deadline. */
export interface Shutdown {
  /** Registers a closer right after its resource is created. */
  add(name: string, close: () => unknown): void;
  /** Runs every closer (even after one fails); idempotent. Resolves false on timeout or error. */
  run(reason: string): Promise<boolean>;
}

/** Creates the closer registry of one process. */
export function createShutdown(options: { log: Logger; timeoutMs: number }): Shutdown {
  const closers: Array<{ name: string; close: () => unknown }> = [];
  let running: Promise<boolean> | undefined;

  const closeAll = async (): Promise<boolean> => {
    let clean = true;
    for (const { name, close } of closers.reverse()) {
      try {
        await close();
        options.log.debug({ resource: name }, 'closed');
      } catch (e) {
        clean = false;
        options.log.error({ err: toError(e), resource: name }, 'close failed');
      }
    }
    return clean;
  };

  return {
    add(name, close) {
      closers.push({ name, close });
    },
    run(reason) {
      running ??= (async () => {
        options.log.info({ reason, timeoutMs: options.timeoutMs }, 'shutting down');
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => {
            options.log.error({ timeoutMs: options.timeoutMs }, 'shutdown deadline passed');
            resolve(false);
          }, options.timeoutMs);
          timer.unref();
        });
        const clean = await Promise.race([closeAll(), deadline]);
        clearTimeout(timer);
        return clean;
      })();
      return running;
    },
  };
}
