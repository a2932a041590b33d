import { existsSync } from 'node:fs';
import { createLogger, exitOnSignals, loadConfigOrExit } from '@askq/shared';
import { ApiConfig } from './config.js';
import { startApi } from './server.js';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadConfigOrExit(process, ApiConfig, 'api');
const log = createLogger({ level: config.LOG_LEVEL, service: 'api' });
const api = await startApi(config, log);
exitOnSignals(process, log, (reason) => api.stop(reason));
