/** Sends a batch of items as one request; resolves with one result per item, in order. */
export type BatchRun<I, O> = (key: string, items: I[]) => Promise<O[]>;

interface Waiting<I, O> {
  item: I;
  resolve: (result: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent calls that share a key into one request, with at most one request per key
 * in flight. A call to an idle key is sent at once, so an idle store sees no added wait; calls
 * that arrive while a request is out wait for it and then go together, up to `maxBatch` at a
 * time. Batches therefore grow with load on their own. Chroma needs this: a small query costs
 * mostly per request (HTTP, the client's serialiser, the server's set-up), and 16 queries in one
 * request cost a tenth of 16 requests (docs/PERFORMANCE.md). DataLoader batches per tick instead,
 * which at real arrival rates forms batches of one.
 */
export function createBatcher<I, O>(options: {
  maxBatch: number;
  run: BatchRun<I, O>;
  /** Called with each batch's size as it is sent. */
  onBatch?: (size: number) => void;
  /**
   * A batch not settled by then fails, and the key's next batch goes. Without it one request
   * that never answers would hold every later call on its key for good.
   */
  timeoutMs: number;
}): (key: string, item: I) => Promise<O> {
  // A key is present while a request of its own is in flight; its queue waits for that request.
  const lanes = new Map<string, Waiting<I, O>[]>();

  const send = (key: string, queue: Waiting<I, O>[]) => {
    const batch = queue.splice(0, options.maxBatch);
    if (batch.length === 0) {
      lanes.delete(key);
      return;
    }
    options.onBatch?.(batch.length);
    const items = batch.map((w) => w.item);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    });
    // `run` may throw synchronously; a promise chain turns that into a rejection of this batch.
    void Promise.race([Promise.resolve().then(() => options.run(key, items)), timeout])
      .then((results) => {
        if (results.length !== batch.length) {
          throw new Error(`batch of ${batch.length} gave ${results.length} results`);
        }
        batch.forEach((w, i) => w.resolve(results[i] as O));
      })
      .catch((e: unknown) => batch.forEach((w) => w.reject(e)))
      .finally(() => {
        clearTimeout(timer);
        send(key, queue);
      });
  };

  return (key, item) =>
    new Promise<O>((resolve, reject) => {
      const queue = lanes.get(key);
      if (queue) {
        queue.push({ item, resolve, reject });
        return;
      }
      const fresh = [{ item, resolve, reject }];
      lanes.set(key, fresh);
      send(key, fresh);
    });
}
