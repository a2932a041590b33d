// Entry of the content pool's threads (content-pool.ts). On Node 20 a worker thread does not
// inherit the TypeScript loader its process was started with (`node --import tsx`, or a test
// runner's), and `--import` in a thread's execArgv is not applied either: the thread registers
// tsx itself, then loads the tasks.
//
// Without a top-level await: on Node 20 a thread terminated while its entry module is still in a
// top-level await aborts the whole process (V8 "Check failed: (location_) != nullptr", nodejs/node
// #43182), and a pool stopped just after it started terminates its threads at any moment. So the
// module evaluates at once, and each task waits for the tasks module it calls.
import { register } from 'tsx/esm/api';

register();
const tasks = import('./tasks.ts');
// A failed load fails each task that awaits it; the bare promise must not be an unhandled one.
tasks.catch(() => undefined);

export const chunk = async (input) => (await tasks).chunk(input);
export const embedHash = async (input) => (await tasks).embedHash(input);
export const validate = async (input) => (await tasks).validate(input);
export const extract = async (input) => (await tasks).extract(input);
export const probe = async (input) => (await tasks).probe(input);
