import type { z } from 'zod';
import type { Logger } from 'pino';
import { ConfigError, loadConfig } from './config.js';

/**
 * Loads config for an entry point; on bad variables prints every one and exits 1 before any
 * connection is opened. Entry points pass their own `process`: only they own its lifecycle.
 */
export function loadConfigOrExit<S extends z.ZodType<object>>(
  proc: NodeJS.Process,
  schema: S,
  name: string,
): Readonly<z.infer<S>> {
  try {
    return loadConfig(schema, proc.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(
      `askq ${name}: ${e.message}\nFix these variables (see .env.example) and start again.`,
    );
    return proc.exit(1);
  }
}

/**
 * SIGINT / SIGTERM start a graceful stop and exit with its outcome; a second signal exits at once.
 * A vanished parent (`npm start` gives its children an IPC channel) counts as a signal.
 */
export function exitOnSignals(
  proc: NodeJS.Process,
  log: Logger,
  stop: (reason: string) => Promise<boolean>,
): void {
  let stopping = false;
  const onSignal = (reason: string) => {
    if (stopping) {
      log.warn({ reason }, 'second signal: exiting now');
      proc.exit(1);
    }
    stopping = true;
    void stop(reason).then((clean) => proc.exit(clean ? 0 : 1));
  };
  proc.on('SIGINT', () => onSignal('SIGINT'));
  proc.on('SIGTERM', () => onSignal('SIGTERM'));
  proc.on('disconnect', () => onSignal('parent exited'));
}
