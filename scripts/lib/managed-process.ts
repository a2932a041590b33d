import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A child process in its own process group, stopped with SIGTERM then SIGKILL. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Where the child's stdout and stderr go; unset means they are inherited from the parent. */
  readonly logFile?: string;
  /** Resolves with the exit code (or null when killed by a signal) once the child has exited. */
  readonly exited: Promise<number | null>;
  /**
   * SIGTERM, then SIGKILL after graceMs (default 10_000); resolves when the child is gone. Calling
   * it again with a shorter grace brings the SIGKILL forward (0: now), as a second Ctrl-C asks.
   */
  stop(graceMs?: number): Promise<void>;
}

/** Options for {@link spawnManaged}. */
export interface SpawnManagedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Appended to (directories are created); without it the child writes to the parent's stdout/stderr. */
  logFile?: string;
  /** Adds an IPC channel so a node child can notice (via 'disconnect') that its parent vanished. */
  ipc?: boolean;
  /**
   * The child gets SIGTERM when this process dies, even by SIGKILL, which no exit hook survives.
   * On Linux, through util-linux's `setpriv --pdeathsig` (it sets the flag, then execs the
   * command, so the pid stays the child's); elsewhere, or without `setpriv`, it is ignored.
   */
  dieWithParent?: boolean;
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  timeoutMs: number;
  /** Names the thing being waited for in error messages, e.g. 'redis-server on port 6390'. */
  what: string;
  /** When this settles first the wait fails at once: the child died during start-up. */
  exited?: Promise<unknown>;
  /** Its last lines are quoted in the error, to show why start-up failed. */
  logFile?: string;
}

const DEFAULT_GRACE_MS = 10_000;
const LOG_TAIL_BYTES = 8192;
const LOG_TAIL_LINES = 20;

// Children live in their own process groups, so nothing else stops them if this process exits
// without calling stop() (an uncaught exception, a stray process.exit): SIGTERM them on the way out.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function stopAllOnExit(child: ChildProcess): void {
  running.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const each of running) signalGroup(each, 'SIGTERM');
  });
}

/** Spawns `command` as the leader of a new process group, its output appended to `logFile`. */
export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  options: SpawnManagedOptions = {},
): ManagedProcess {
  let logFd: number | undefined;
  if (options.logFile !== undefined) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    logFd = openSync(options.logFile, 'a');
  }
  // The child writes straight to the file, so its output survives the parent and never blocks on it.
  const output = logFd ?? 'inherit';
  const stdio: StdioOptions = ['ignore', output, output];
  if (options.ipc === true) stdio.push('ipc');

  let child: ChildProcess;
  try {
    const setpriv = options.dieWithParent === true ? setprivPath() : undefined;
    const [file, argv] = setpriv
      ? [setpriv, ['--pdeathsig', 'TERM', '--', command, ...args]]
      : [command, args];
    // detached: its own process group, so a terminal Ctrl-C reaches only the parent, which then
    // stops the children in order.
    child = spawn(file, argv, { cwd: options.cwd, env: options.env, detached: true, stdio });
  } finally {
    // The child holds its own copy of the descriptor.
    if (logFd !== undefined) closeSync(logFd);
  }
  // Spawn failures are caught by the pid check below; later 'error' events (a failed kill or IPC
  // send) must not crash the parent, which learns of a live child through `exited` anyway.
  child.on('error', () => {});
  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`${name}: could not start ${command} (not found or not executable)`);
  }

  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  stopAllOnExit(child);

  let stopping: Promise<void> | undefined;
  let killAt = Number.POSITIVE_INFINITY;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (graceMs = DEFAULT_GRACE_MS): Promise<void> => {
    stopping ??= (async () => {
      signalGroup(child, 'SIGTERM');
      try {
        await exited;
      } finally {
        clearTimeout(killTimer);
      }
    })();
    // A child whose event loop is stuck never handles SIGTERM: SIGKILL ends it when the grace is
    // over, or at once when a later call allows less.
    const at = Date.now() + graceMs;
    if (at < killAt) {
      killAt = at;
      clearTimeout(killTimer);
      if (graceMs <= 0) signalGroup(child, 'SIGKILL');
      else killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    }
    return stopping;
  };

  return { name, pid, logFile: options.logFile, exited, stop };
}

/** util-linux's `setpriv` on Linux, if installed (Debian has it in every system). */
function setprivPath(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'setpriv'), constants.X_OK);
      return join(dir, 'setpriv');
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

// Signals the whole group so helpers the child started stop too. Only while the leader has not been
// reaped: after that its pid (and so the group id) may belong to an unrelated process.
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

type Outcome = { kind: 'ready' | 'retry' | 'timeout' } | { kind: 'exited'; exit: unknown };

/**
 * A {@link waitFor} check: whether `url` answers 2xx, each try bounded by `timeoutMs` (a server
 * that takes the connection and never answers would otherwise hold the wait to its deadline).
 */
export function answersOk(url: string, timeoutMs = 2_000): () => Promise<boolean> {
  return async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok;
  };
}

/**
 * Retries `check` (10 ms backoff doubling to 200 ms) until it returns true; rejects on timeout or
 * when `exited` settles first.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  options: WaitForOptions,
): Promise<void> {
  const { timeoutMs, what } = options;
  const timers = new AbortController();
  const after = (ms: number, outcome: Outcome): Promise<Outcome> =>
    // Timers are only aborted in `finally`, when nobody listens any more.
    sleep(ms, outcome, { signal: timers.signal }).catch(() => outcome);
  const deadline = after(timeoutMs, { kind: 'timeout' });
  const died: Promise<Outcome> = options.exited
    ? options.exited.then(
        (exit) => ({ kind: 'exited', exit }),
        (error: unknown) => ({ kind: 'exited', exit: error }),
      )
    : new Promise(() => {});
  let lastError: Error | undefined;
  const attempt = (): Promise<Outcome> =>
    check().then(
      (ready): Outcome => ({ kind: ready ? 'ready' : 'retry' }),
      (error: unknown): Outcome => {
        lastError = toError(error);
        return { kind: 'retry' };
      },
    );

  try {
    for (let backoff = 10; ; backoff = Math.min(backoff * 2, 200)) {
      // A check that hangs is cut short by the deadline or by the child's death.
      let outcome = await Promise.race([attempt(), deadline, died]);
      if (outcome.kind === 'retry') {
        outcome = await Promise.race([after(backoff, { kind: 'retry' }), deadline, died]);
      }
      switch (outcome.kind) {
        case 'ready':
          return;
        case 'retry':
          continue;
        case 'timeout':
          throw await timeoutError();
        case 'exited':
          throw await exitError(outcome.exit);
      }
    }
  } finally {
    timers.abort();
  }

  async function timeoutError(): Promise<Error> {
    const reason = lastError ? ` (last check: ${lastError.message})` : '';
    return new Error(`${what} was not ready after ${timeoutMs} ms${reason}${await logTail()}`, {
      cause: lastError,
    });
  }

  async function exitError(exit: unknown): Promise<Error> {
    const how =
      typeof exit === 'number'
        ? `with exit code ${exit}`
        : exit === null
          ? 'killed by a signal'
          : `(${toError(exit).message})`;
    return new Error(`${what} exited during start-up ${how}${await logTail()}`);
  }

  async function logTail(): Promise<string> {
    if (options.logFile === undefined) return '';
    const tail = await readLogTail(options.logFile);
    return tail === '' ? '' : `\n--- last lines of ${options.logFile} ---\n${tail}`;
  }
}

/** The last lines of a log file, colour codes removed; '' when it cannot be read. */
export async function readLogTail(file: string, maxLines = LOG_TAIL_LINES): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      // eslint-disable-next-line no-control-regex -- ANSI colour sequences start with ESC
      const text = buffer.toString('utf8').replace(/\u001b\[[0-9;]*m/g, '');
      return text.trimEnd().split('\n').slice(-maxLines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
