import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import type { PublicError, QuestionResult, Source } from './question.js';
import { defineScript } from './redis-script.js';

/** The three timed stages of the pipeline. */
export type StageName = 'retrieval' | 'generation' | 'validation';

/** The data of each event type of the stream (SPEC 3). */
export interface EventDataMap {
  status: { status: 'queued' | 'active'; attempt: number };
  stage: { stage: StageName; state: 'started' | 'completed' | 'failed'; ms?: number };
  sources: { sources: Source[] };
  token: { text: string; attempt: number };
  retry: { attempt: number; reason: string };
  completed: { result: QuestionResult };
  failed: { error: PublicError };
  cancelled: Record<string, never>;
}

/** Name of an event type. */
export type EventName = keyof EventDataMap;

/** An event before it is appended. */
export type AskEvent = { [K in EventName]: { event: K; data: EventDataMap[K] } }[EventName];

/** An event as stored: `id` is its Redis stream id, `data` its JSON text. */
export interface LoggedEvent {
  id: string;
  event: EventName;
  data: string;
  /**
   * The id of the event logged just before this one (none for the first), on published events
   * only: a live reader whose last event is another one has missed one and re-reads the log.
   */
  prev?: string;
}

/** Events after which a question's stream ends. */
export const TERMINAL_EVENTS: ReadonlySet<EventName> = new Set([
  'completed',
  'failed',
  'cancelled',
]);

const EVENT_ID = /^\d{1,16}-\d{1,16}$/;

/** Whether a string is a well-formed event id (a Redis stream id). */
export function isEventId(value: string): boolean {
  return EVENT_ID.test(value);
}

/** Orders event ids like Redis orders stream ids: negative when a comes first. */
export function compareEventIds(a: string, b: string): number {
  // Compared as digit strings (shorter is smaller, then lexicographic): exact for Redis's 64-bit
  // parts, and cheap, which matters when every live event is checked for every stream.
  const dash = a.indexOf('-');
  const bDash = b.indexOf('-');
  return (
    compareDigits(a.slice(0, dash), b.slice(0, bDash)) ||
    compareDigits(a.slice(dash + 1), b.slice(bDash + 1))
  );
}

function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Appends events in order in one script call (one round trip, and one command for the
 * connection's auto-pipelining to batch with others). Each event is refused once the question
 * is finished (so a late token never follows `cancelled`), once a cancel was requested (anything
 * but `cancelled`: the worker then stops, even if the broadcast cancel never reached it), or when
 * it comes from an attempt older than the question's latest (a worker that lost its job's lock,
 * e.g. in a Redis failover, and still runs while another worker retries it). Otherwise it is
 * XADDed, its record fields are applied in the same step, a terminal event sets the TTL, and it
 * is published with the id of the event before it, so that a reader can tell when it missed one.
 * Record and log share a hash tag, so this is valid on Redis Cluster.
 *
 * KEYS: log, record. ARGV: channel, maxLen, attempt (0: none), then per event: name, data, ttl,
 * number of record fields, and those fields and values.
 */
const APPEND_LUA = `
local state = redis.call('HMGET', KEYS[2], 'status', 'cancelRequested', 'attempts', 'lastEvent')
local status = state[1]
local finished = status == 'completed' or status == 'failed' or status == 'cancelled'
local cancelling = state[2] == '1'
local attempt = tonumber(ARGV[3])
local current = tonumber(state[3] or '0') or 0
local superseded = attempt > 0 and attempt < current
if not finished and not superseded and attempt > current then
  redis.call('HSET', KEYS[2], 'attempts', attempt)
end
local prev = state[4] or ''
local results = {}
local i = 4
while i <= #ARGV do
  local name, data, ttl, fields = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  if finished or superseded or (cancelling and name ~= 'cancelled') then
    results[#results + 1] = false
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', name, 'd', data)
    redis.call('HSET', KEYS[2], 'lastEvent', id)
    if fields > 0 then redis.call('HSET', KEYS[2], unpack(ARGV, i + 4, i + 3 + 2 * fields)) end
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[1], ttl)
      redis.call('EXPIRE', KEYS[2], ttl)
    end
    redis.call('SPUBLISH', ARGV[1], id .. '\\n' .. prev .. '\\n' .. name .. '\\n' .. data)
    prev = id
    results[#results + 1] = id
    finished = name == 'completed' or name == 'failed' or name == 'cancelled'
  end
  i = i + 4 + 2 * fields
end
return results
`;

/** Options of one append. */
export interface AppendOptions {
  /** Record fields written in the same step as the event. */
  set?: Record<string, string | number>;
  /**
   * The worker attempt that writes it: refused if a later attempt has written already, and
   * from then on any earlier attempt's writes are refused.
   */
  attempt?: number;
  /**
   * Seconds the record and the log live from this event on. A terminal event always sets the
   * result TTL; the first event sets one too, so a question that somehow never ends expires.
   */
  ttlSeconds?: number;
}

/** The per-question event log in Redis (a stream per question). */
export interface EventLog {
  /** Appends an event; returns its id, or null when the question had already finished. */
  append(questionId: string, event: AskEvent, options?: AppendOptions): Promise<string | null>;
  /** Appends several events in order in one round trip; each result as for `append`. */
  appendAll(
    questionId: string,
    entries: Array<{ event: AskEvent; options?: AppendOptions }>,
  ): Promise<Array<string | null>>;
  /** Events after `afterId` (exclusive), or from the start, in order; at most `limit` of them. */
  read(questionId: string, afterId?: string, limit?: number): Promise<LoggedEvent[]>;
}

/** Events a reader takes from the log at once: what a replay holds in memory. */
export const LOG_PAGE_SIZE = 200;

/**
 * The log after `afterId` in pages of at most `pageSize` events, each read when the caller asks
 * for it: a replay holds one page, and a client that does not read stops the reading.
 */
export async function* logPages(
  log: Pick<EventLog, 'read'>,
  questionId: string,
  afterId?: string,
  pageSize = LOG_PAGE_SIZE,
): AsyncGenerator<LoggedEvent[]> {
  let after = afterId;
  for (;;) {
    const page = await log.read(questionId, after, pageSize);
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    after = page.at(-1)!.id;
  }
}

/** Builds the event log over a connection the caller owns. */
export function createEventLog(
  redis: RedisClient,
  keys: Keys,
  options: { maxLen: number; ttlSeconds: number },
): EventLog {
  // Keys: the event log, the question's record. Args: the channel, the log's bound, the attempt,
  // then each event's fields.
  const appendCommand = defineScript<Array<string | number>, Array<string | null>>(
    redis,
    'askqAppend',
    { keys: 2, lua: APPEND_LUA },
  );
  const appendAll = (
    questionId: string,
    entries: Array<{ event: AskEvent; options?: AppendOptions }>,
  ) => {
    const perEvent = entries.flatMap(({ event, options: appendOptions }) => {
      const fields = Object.entries(appendOptions?.set ?? {}).flatMap(([k, v]) => [k, String(v)]);
      const ttl = TERMINAL_EVENTS.has(event.event)
        ? options.ttlSeconds
        : (appendOptions?.ttlSeconds ?? 0);
      return [event.event, JSON.stringify(event.data), ttl, fields.length / 2, ...fields];
    });
    return appendCommand(
      [keys.events(questionId), keys.question(questionId)],
      [
        keys.eventsChannel(questionId),
        options.maxLen,
        // One writer per call: the first entry's attempt speaks for all.
        entries[0]?.options?.attempt ?? 0,
        ...perEvent,
      ],
    );
  };

  return {
    async append(questionId, event, appendOptions) {
      const [id] = await appendAll(questionId, [{ event, options: appendOptions }]);
      return id ?? null;
    },

    async appendAll(questionId, entries) {
      const ids = await appendAll(questionId, entries);
      return entries.map((_, i) => ids[i] ?? null);
    },

    async read(questionId, afterId, limit) {
      const start = afterId === undefined ? '-' : `(${afterId}`;
      const key = keys.events(questionId);
      const entries =
        limit === undefined
          ? await redis.xrange(key, start, '+')
          : await redis.xrange(key, start, '+', 'COUNT', limit);
      return entries.map(([id, fields]) => decodeFields(id, fields));
    },
  };
}

function decodeFields(id: string, fields: string[]): LoggedEvent {
  let event = '';
  let data = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'e') event = fields[i + 1] ?? '';
    else if (fields[i] === 'd') data = fields[i + 1] ?? '';
  }
  return { id, event: event as EventName, data };
}

/** Parses a message published by `append` (`id\nprev\nevent\ndata`; prev is empty for the first). */
export function decodePublished(message: string): LoggedEvent | undefined {
  const first = message.indexOf('\n');
  const second = message.indexOf('\n', first + 1);
  const third = message.indexOf('\n', second + 1);
  if (first < 0 || second < 0 || third < 0) return undefined;
  const prev = message.slice(first + 1, second);
  return {
    id: message.slice(0, first),
    event: message.slice(second + 1, third) as EventName,
    data: message.slice(third + 1),
    ...(prev ? { prev } : {}),
  };
}
