import { existsSync } from 'node:fs';
import { createLogger, exitOnSignals, loadConfigOrExit, startWatchdog } from '@askq/shared';
import { ApiConfig } from './config.js';
import { startApi } from './server.js';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadConfigOrExit(process, ApiConfig, 'api');
const log = createLogger({ level: config.LOG_LEVEL, service: 'api' });
// Started first: a loop that hangs even during start-up must not outlive its launcher.
if (config.WATCHDOG_TIMEOUT_MS > 0) {
  startWatchdog({ timeoutMs: config.WATCHDOG_TIMEOUT_MS, service: 'api' });
}
const api = await startApi(config, log);
exitOnSignals(process, log, (reason) => api.stop(reason));
