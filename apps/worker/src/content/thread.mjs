// Entry of the content pool's threads (content-pool.ts). On Node 20 a worker thread does not
// inherit the TypeScript loader its process was started with (`node --import tsx`, or a test
// runner's), and `--import` in a thread's execArgv is not applied either: the thread registers
// tsx itself, then loads the tasks.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./tasks.ts');

export const { chunk, embedHash, validate, extract, probe } = tasks;
