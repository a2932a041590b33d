import { existsSync } from 'node:fs';
import { createLogger, exitOnSignals, loadConfigOrExit, startWatchdog } from '@askq/shared';
import { WorkerConfig } from './config.js';
import { startWorker } from './runtime.js';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadConfigOrExit(process, WorkerConfig, 'worker');
const log = createLogger({ level: config.LOG_LEVEL, service: 'worker' });
// Started first: a loop that hangs even during start-up must not outlive its launcher.
if (config.WATCHDOG_TIMEOUT_MS > 0) {
  startWatchdog({ timeoutMs: config.WATCHDOG_TIMEOUT_MS, service: 'worker' });
}
const worker = await startWorker(config, log);
exitOnSignals(process, log, (reason) => worker.stop(reason));
