/** A signal bounded in time, and what ended it. */
export interface Deadline {
  /** Aborts when the time is up (a TimeoutError) or when a parent signal aborts (its reason). */
  readonly signal: AbortSignal;
  /** True once the time ran out (not when a parent aborted). */
  readonly timedOut: boolean;
  /** Stops the timer and lets go of the parents: call it once the bounded work is over. */
  clear(): void;
}

/**
 * A signal that aborts after `timeoutMs`, or as soon as any of `parents` does.
 *
 * Why not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node 20 the timer of
 * `AbortSignal.timeout` holds its signal only weakly, and neither a signal composed by
 * `AbortSignal.any` nor a `Request` copied from another holds it strongly, so after a garbage
 * collection the timeout is gone and never fires: a request to a server that stopped answering
 * then waits for ever. Here the timer holds the controller until it fires or `clear()` runs.
 */
export function deadline(timeoutMs: number, ...parents: (AbortSignal | undefined)[]): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  // A pending deadline alone must not keep a process alive (the work it bounds does, if any).
  timer.unref();
  const onAbort = function (this: AbortSignal) {
    controller.abort(this.reason);
  };
  const listening = parents.filter((p): p is AbortSignal => p !== undefined);
  for (const parent of listening) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    clear() {
      clearTimeout(timer);
      for (const parent of listening) parent.removeEventListener('abort', onAbort);
    },
  };
}

/** Runs `work` under a deadline of `timeoutMs` (and `parent`), clearing it however work ends. */
export async function withDeadline<T>(
  timeoutMs: number,
  parent: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const limit = deadline(timeoutMs, parent);
  try {
    return await work(limit.signal);
  } finally {
    limit.clear();
  }
}
