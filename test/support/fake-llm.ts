import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One request the fake received. */
export interface FakeLlmRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  body: any;
}

/** How the fake answers one chat completion request. */
export interface FakeLlmReply {
  /** The answer; streamed one word (with its leading whitespace) per chunk. */
  text?: string;
  /** >= 400 answers with an OpenAI-style error body instead. */
  status?: number;
  /** The error message; given alone it means status 500. */
  error?: string;
  /** Pause between streamed chunks. */
  chunkDelayMs?: number;
  /** Pause between the response headers and the first streamed chunk (time to first token). */
  firstChunkDelayMs?: number;
  /** Extra response headers, e.g. retry-after. */
  headers?: Record<string, string>;
  /** Destroys the connection after this many streamed chunks, as a crashing server would. */
  dropAfterChunks?: number;
  /**
   * Streams `text` again and again, as a model told to "repeat this forever" would, until the
   * request's `max_tokens` (words stand in for tokens) or the client leaves.
   */
  forever?: boolean;
}

/** An OpenAI-compatible HTTP server on 127.0.0.1 for tests. */
export interface FakeLlm {
  /** e.g. http://127.0.0.1:PORT/v1 */
  readonly baseURL: string;
  /** Every chat/embeddings request received, in order. */
  readonly requests: FakeLlmRequest[];
  /** Sets the behaviour of later chat completion requests. */
  reply(fn: (req: FakeLlmRequest) => FakeLlmReply | Promise<FakeLlmReply>): void;
  /** Sets the status of `/v1/embeddings` answers (200 by default); an error status gets an error body. */
  embeddingsStatus(fn: (req: FakeLlmRequest) => number): void;
  /** Resolves when the client disconnected before the stream finished, for requests[n]. */
  disconnected(n: number): Promise<void>;
  close(): Promise<void>;
}

/** The answer when no reply() was set. */
export const DEFAULT_FAKE_ANSWER = 'The answer is in the sources [1].';

const EMBEDDING_DIMENSIONS = 8;

/** Starts a fake OpenAI-compatible server on a free port. */
export async function createFakeLlm(): Promise<FakeLlm> {
  const requests: FakeLlmRequest[] = [];
  const disconnects = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  let embeddingsStatusFn: (req: FakeLlmRequest) => number = () => 200;
  let replyFn: (req: FakeLlmRequest) => FakeLlmReply | Promise<FakeLlmReply> = () => ({
    text: DEFAULT_FAKE_ANSWER,
  });

  const disconnectOf = (n: number): { promise: Promise<void>; resolve: () => void } => {
    let entry = disconnects.get(n);
    if (entry === undefined) {
      let resolve = (): void => {};
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      disconnects.set(n, entry);
    }
    return entry;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        sendError(res, 500, error instanceof Error ? error.message : String(error));
      } else {
        res.destroy();
      }
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const route =
      req.method === 'POST' && path === '/v1/chat/completions'
        ? 'chat'
        : req.method === 'POST' && path === '/v1/embeddings'
          ? 'embeddings'
          : undefined;
    if (route === undefined) {
      req.resume();
      sendError(res, 404, `Unknown request URL: ${req.method} ${path}`);
      return;
    }
    const request: FakeLlmRequest = { path, headers: req.headers, body: await readJson(req) };
    const n = requests.push(request) - 1;
    // Cancels pending delays and further writes once the client has gone.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) {
        gone.abort();
        disconnectOf(n).resolve();
      }
    });
    if (route === 'embeddings') {
      const status = embeddingsStatusFn(request);
      if (status >= 400) {
        sendJson(res, status, {
          error: { message: 'rejected by the test', type: 'invalid_request_error', code: null },
        });
        return;
      }
      sendJson(res, 200, embeddingsResponse(request.body as Record<string, unknown> | undefined));
      return;
    }
    await answerChat(request, await replyFn(request), res, gone.signal);
  }

  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    embeddingsStatus(fn) {
      embeddingsStatusFn = fn;
    },
    reply(fn) {
      replyFn = fn;
    },
    disconnected: (n) => disconnectOf(n).promise,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // close() alone waits for keep-alive and streaming connections to end by themselves.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function answerChat(
  request: FakeLlmRequest,
  reply: FakeLlmReply,
  res: ServerResponse,
  gone: AbortSignal,
): Promise<void> {
  const body: Record<string, unknown> = request.body ?? {};
  const status = reply.status ?? (reply.error !== undefined ? 500 : 200);
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  if (status >= 400) {
    sendError(res, status, reply.error ?? `fake LLM error ${status}`);
    return;
  }
  const text = reply.text ?? DEFAULT_FAKE_ANSWER;
  const model = typeof body.model === 'string' ? body.model : 'fake-model';
  const id = `chatcmpl-fake-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
  const created = Math.floor(Date.now() / 1000);
  // Whitespace stays attached to the following word, so joining the chunks gives back `text`.
  // Sticky: each match starts where the last ended, so the text is scanned once.
  const words = text.match(/\s*\S+|\s+/gy) ?? [];
  // Words stand in for tokens: deterministic, and easy to predict in a test.
  const promptTokens = countWords(messageText(body.messages));
  const completionTokens = countWords(text);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };

  if (body.stream !== true) {
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage,
    });
    return;
  }

  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): unknown => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices,
    ...extra,
  });
  const send = (data: unknown): void => {
    if (!gone.aborted) res.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  // No delay set means none at all: even sleep(0) is a timer of at least 1 ms, which made an
  // "instant" answer of six chunks take six milliseconds.
  const pause = async (ms: number | undefined) => {
    if (ms) await sleep(ms, undefined, { signal: gone });
  };
  // Like a real server, it stops at max_tokens with finish_reason "length".
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
  try {
    await pause(reply.firstChunkDelayMs);
    const contents = words.length > 0 ? words : [''];
    let finish = 'stop';
    for (let i = 0; reply.forever === true || i < contents.length; i++) {
      if (i === reply.dropAfterChunks) {
        res.socket?.destroy();
        return;
      }
      if (i >= maxTokens) {
        finish = 'length';
        break;
      }
      if (gone.aborted) return;
      if (i > 0) await pause(reply.chunkDelayMs);
      // A repeated answer yields to the event loop now and then, as a network stream would.
      if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
      const content = contents[i % contents.length]!;
      const delta = i === 0 ? { role: 'assistant', content } : { content };
      send(chunk([{ index: 0, delta, logprobs: null, finish_reason: null }]));
    }
    await pause(reply.chunkDelayMs);
    send(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]));
    const options = body.stream_options as { include_usage?: boolean } | undefined;
    if (options?.include_usage === true) send(chunk([], { usage }));
    if (!gone.aborted) res.end('data: [DONE]\n\n');
  } catch (error) {
    // An aborted delay means the client left: there is nobody to answer.
    if (!gone.aborted) throw error;
  }
}

function embeddingsResponse(body: Record<string, unknown> | undefined): unknown {
  const raw = body?.input;
  const inputs: unknown[] = Array.isArray(raw) ? raw : [raw];
  const dimensions = typeof body?.dimensions === 'number' ? body.dimensions : EMBEDDING_DIMENSIONS;
  // The openai SDK asks for base64 (packed little-endian float32) unless the caller chose a format.
  const base64 = body?.encoding_format === 'base64';
  const data = inputs.map((input, index) => {
    const vector = hashVector(
      typeof input === 'string' ? input : JSON.stringify(input),
      dimensions,
    );
    const embedding = base64
      ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
      : vector;
    return { object: 'embedding', index, embedding };
  });
  const tokens = inputs.reduce<number>((sum, input) => sum + countWords(input), 0);
  return {
    object: 'list',
    data,
    model: typeof body?.model === 'string' ? body.model : 'fake-embeddings',
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** A unit-length vector that depends only on `text`. */
export function hashVector(text: string, dimensions = EMBEDDING_DIMENSIONS): number[] {
  const values: number[] = [];
  for (let block = 0; values.length < dimensions; block++) {
    const digest = createHash('sha256').update(`${block}:${text}`).digest();
    for (let i = 0; i + 4 <= digest.length && values.length < dimensions; i += 4) {
      values.push(digest.readUInt32LE(i) / 0xffffffff - 0.5);
    }
  }
  const norm = Math.hypot(...values) || 1;
  // Rounded through float32 so JSON and base64 answers carry the same numbers.
  return Array.from(new Float32Array(values.map((v) => v / norm)));
}

function messageText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  return messages
    .map((m: { content?: unknown }) =>
      typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? ''),
    )
    .join(' ');
}

function countWords(value: unknown): number {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  return text.split(/\s+/).filter(Boolean).length;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, status: number, message: string): void {
  const type =
    status === 429
      ? 'requests'
      : status === 401
        ? 'invalid_authentication'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  const code =
    status === 429 ? 'rate_limit_exceeded' : status === 404 ? 'not_found' : String(status);
  sendJson(res, status, { error: { message, type, code, param: null } });
}

/** A source as askq's prompt fences it: `<source n="1" title="…">\ntext\n</source>`. */
export interface PromptSource {
  n: number;
  title?: string;
  text: string;
}

/** The sources of the last user message of a chat request, in order. */
export function promptSources(req: FakeLlmRequest): PromptSource[] {
  const messages = ((req.body as { messages?: Array<{ content: string }> }).messages ?? []).map(
    (m) => m.content,
  );
  const prompt = messages.at(-1) ?? '';
  return [
    ...prompt.matchAll(/<source n="(\d+)"(?: title="([^"]*)")?>\n([\s\S]*?)\n<\/source>/g),
  ].map(([, n, title, text]) => ({ n: Number(n), ...(title ? { title } : {}), text: text ?? '' }));
}
