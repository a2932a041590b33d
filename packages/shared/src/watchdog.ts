import { Worker } from 'node:worker_threads';

// The watchdog's thread, as plain JavaScript (no loader needed). It reads the main thread's last
// heartbeat from shared memory; when the main loop has not beaten for timeoutMs it writes one log
// line straight to stdout (the main thread, which owns the logger, is the one that is stuck) and
// kills the process. Signals are handled on the main loop, so a stuck process cannot hear SIGTERM:
// without this it would outlive its launcher and hold its jobs' locks until killed by hand.
const THREAD = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { buffer, timeoutMs, checkMs, service } = workerData;
const beats = new BigInt64Array(buffer);
setInterval(() => {
  const stalledMs = Date.now() - Number(Atomics.load(beats, 0));
  if (stalledMs <= timeoutMs) return;
  const line = { level: 60, time: Date.now(), service, pid: process.pid, stalledMs, timeoutMs,
    msg: 'event loop blocked past WATCHDOG_TIMEOUT_MS; killing the process' };
  try { writeSync(1, JSON.stringify(line) + '\\n'); } catch {}
  process.kill(process.pid, 'SIGKILL');
}, checkMs);
`;

/**
 * Kills this process when its event loop has not turned for `timeoutMs`, from a thread of its
 * own: a loop stuck in a synchronous call (a runaway regular expression, an endless loop) serves
 * nothing, renews no lock and ignores SIGTERM. Killed, it is replaced by whatever runs it (the
 * `npm start` launcher, Docker's restart policy, Kubernetes), and its jobs go to other workers.
 */
export function startWatchdog(options: { timeoutMs: number; service: string }): void {
  // Epoch milliseconds in 64 bits: a 32-bit offset would wrap after 24.9 days of uptime.
  const buffer = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT);
  const beats = new BigInt64Array(buffer);
  const beat = () => Atomics.store(beats, 0, BigInt(Date.now()));
  beat();
  const every = Math.max(10, Math.min(1_000, Math.floor(options.timeoutMs / 4)));
  const heart = setInterval(beat, every);
  heart.unref();
  const thread = new Worker(THREAD, {
    eval: true,
    workerData: {
      buffer,
      timeoutMs: options.timeoutMs,
      checkMs: every,
      service: options.service,
    },
    // The process's own flags (a TypeScript loader, say) are not needed by this plain script.
    execArgv: [],
  });
  // It must never keep the process alive, nor crash it; it lives as long as the process.
  thread.unref();
  thread.on('error', () => {});
}
