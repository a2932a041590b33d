// The load generator of the sse-fanout bench: event streams that record each token's delivery
// latency, opened in batches.
import http from 'node:http';

// Streams opened at once, so the server's accept queue is not flooded.
const CONNECT_BATCH = 500;
const CONNECT_TIMEOUT_MS = 60_000;
const now = () => performance.timeOrigin + performance.now();

/**
 * Open streams recording every token's delivery latency (arrival - the send time it carries).
 * The frames are scanned for the stamp, not parsed with scripts/lib/event-stream.ts: at 10k
 * streams (100k events/s) a full SSE parse and JSON.parse costs the load generator about 7 times
 * the CPU of this scan, CPU it shares with the server measured on 2 cores.
 */
export function createClients() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const requests: http.ClientRequest[] = [];
  const latencies: number[] = [];
  const fromSchedule: number[] = [];
  let connected = 0;
  let errors = 0;
  let endedEarly = 0;
  let closing = false;

  const open = (url: string) =>
    new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve();
      };
      const req = http.get(url, { agent }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          settle(new Error(`${url}: HTTP ${String(res.statusCode)}`));
          return;
        }
        res.setEncoding('latin1');
        let carry = '';
        res.on('data', (chunk: string) => {
          const at = now();
          const text = carry === '' ? chunk : carry + chunk;
          let start = 0;
          let end: number;
          while ((end = text.indexOf('\n\n', start)) >= 0) {
            const frame = text.slice(start, end);
            start = end + 2;
            if (frame.includes('\nevent: token\n')) {
              const i = frame.indexOf('"text":"') + 8;
              const space = frame.indexOf(' ', i);
              latencies.push(at - Number(frame.slice(i, space)));
              fromSchedule.push(at - Number(frame.slice(space + 1, frame.indexOf('"', space))));
            } else if (!settled && frame.includes('\nevent: status\n')) {
              connected += 1;
              settle();
            }
          }
          carry = start < text.length ? text.slice(start) : '';
        });
        res.on('end', () => {
          if (!closing) endedEarly += 1;
          settle(new Error(`${url}: stream ended`));
        });
        res.on('error', () => undefined);
      });
      req.on('error', (e) => {
        if (!closing) errors += 1;
        settle(e);
      });
      requests.push(req);
    });

  return {
    latencies,
    fromSchedule,
    get connected() {
      return connected;
    },
    get errors() {
      return errors;
    },
    get endedEarly() {
      return endedEarly;
    },
    /** Opens the streams in batches, each batch fully connected (first event seen) before the next. */
    async connect(urls: string[]) {
      for (let i = 0; i < urls.length; i += CONNECT_BATCH) {
        const batch = urls.slice(i, i + CONNECT_BATCH).map(open);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`connect timed out: ${String(connected)}/${String(urls.length)}`)),
            CONNECT_TIMEOUT_MS,
          );
        });
        try {
          await Promise.race([Promise.all(batch), timeout]);
        } finally {
          clearTimeout(timer);
        }
      }
    },
    close() {
      closing = true;
      for (const req of requests) req.destroy();
      agent.destroy();
    },
  };
}
