import { existsSync } from 'node:fs';
import { createLogger, exitOnSignals, loadConfigOrExit } from '@askq/shared';
import { WorkerConfig } from './config.js';
import { startWorker } from './runtime.js';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadConfigOrExit(process, WorkerConfig, 'worker');
const log = createLogger({ level: config.LOG_LEVEL, service: 'worker' });
const worker = await startWorker(config, log);
exitOnSignals(process, log, (reason) => worker.stop(reason));
