// The benches' HTTP client: node:http with kept-alive connections. The load generator shares the
// two cores with what it measures, and fetch (undici, web streams) cost it about twice as much CPU
// per question; a lean client leaves that CPU to askq and keeps its own time out of the figures.
import { Agent, request } from 'node:http';
import { createEventParser } from '../scripts/lib/event-stream.js';

const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1_024 });

/** A finished response: status and body as text. */
export interface Reply {
  status: number;
  text: string;
}

/** Sends a request with an optional JSON body and reads the whole response. */
export function send(method: string, url: string, json?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = request(
      url,
      {
        method,
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Reads an event stream, calling `onEvent` with each event and the time its bytes arrived, until
 * `isLast(event)`; then closes the stream. Resolves with that last event's name. The frames are
 * read by askq's event-stream parser (scripts/lib/event-stream.ts), over node:http.
 */
export function followStream(
  url: string,
  onEvent: (event: string, data: string, at: number) => void,
  isLast: (event: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`no stream from ${url}: ${res.statusCode}`));
        return;
      }
      let done = false;
      let at = 0;
      const parser = createEventParser(({ event, data }) => {
        if (done) return;
        onEvent(event, data, at);
        if (isLast(event)) {
          done = true;
          // The server ends a finished question's stream; its connection is then reused.
          res.resume();
          resolve(event);
        }
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (done) return;
        at = performance.now();
        parser.feed(chunk);
      });
      res.on('end', () => {
        if (!done) reject(new Error(`stream ${url} ended without a terminal event`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
