import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import type { PublicError, QuestionResult, Source } from './question.js';

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
 * Appends one event in a single round trip: refuses once the question is finished (so a late
 * token never follows `cancelled`), once a cancel was requested (anything but `cancelled`: the
 * worker then stops, even if the broadcast cancel never reached it), or when it comes from an
 * attempt older than the question's latest (a worker that lost its job's lock, e.g. in a Redis
 * failover, and still runs while another worker retries it). Then it XADDs the event, applies
 * the record fields in the same step, sets the TTL on terminal events, and publishes it with the
 * id of the event before it, so that a reader can tell when it missed one. Record and log share a hash
 * tag, so this is valid on Redis Cluster.
 */
const APPEND_LUA = `
local state = redis.call('HMGET', KEYS[2], 'status', 'cancelRequested', 'attempts')
local status = state[1]
if status == 'completed' or status == 'failed' or status == 'cancelled' then return false end
if state[2] == '1' and ARGV[2] ~= 'cancelled' then return false end
local attempt = tonumber(ARGV[6])
if attempt > 0 then
  local current = tonumber(state[3] or '0') or 0
  if attempt < current then return false end
  if attempt > current then redis.call('HSET', KEYS[2], 'attempts', attempt) end
end
local prev = redis.call('HGET', KEYS[2], 'lastEvent') or ''
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[2], 'd', ARGV[3])
redis.call('HSET', KEYS[2], 'lastEvent', id)
if #ARGV > 6 then redis.call('HSET', KEYS[2], unpack(ARGV, 7)) end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[1], id .. '\\n' .. prev .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3])
return id
`;

type AppendCommand = (
  events: string,
  record: string,
  channel: string,
  event: string,
  data: string,
  maxLen: number,
  ttl: number,
  attempt: number,
  ...fields: string[]
) => Promise<string | null>;

/** Options of one append. */
export interface AppendOptions {
  /** Record fields written in the same step as the event. */
  set?: Record<string, string | number>;
  /**
   * The worker attempt that writes it: refused if a later attempt has written already, and
   * from then on any earlier attempt's writes are refused.
   */
  attempt?: number;
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
  /** Events after `afterId` (exclusive), or the whole log, in order. */
  read(questionId: string, afterId?: string): Promise<LoggedEvent[]>;
}

/** Builds the event log over a connection the caller owns. */
export function createEventLog(
  redis: RedisClient,
  keys: Keys,
  options: { maxLen: number; ttlSeconds: number },
): EventLog {
  if (!('askqAppend' in redis)) {
    redis.defineCommand('askqAppend', { numberOfKeys: 2, lua: APPEND_LUA });
  }
  const argsOf = (questionId: string, event: AskEvent, appendOptions: AppendOptions = {}) => {
    const fields = Object.entries(appendOptions.set ?? {}).flatMap(([k, v]) => [k, String(v)]);
    const ttl = TERMINAL_EVENTS.has(event.event) ? options.ttlSeconds : 0;
    return [
      keys.events(questionId),
      keys.question(questionId),
      keys.eventsChannel(questionId),
      event.event,
      JSON.stringify(event.data),
      options.maxLen,
      ttl,
      appendOptions.attempt ?? 0,
      ...fields,
    ] as const;
  };

  return {
    append(questionId, event, appendOptions) {
      return (redis as unknown as { askqAppend: AppendCommand }).askqAppend(
        ...argsOf(questionId, event, appendOptions),
      );
    },

    async appendAll(questionId, entries) {
      const pipeline = redis.pipeline() as unknown as {
        askqAppend: AppendCommand;
        exec(): Promise<Array<[Error | null, unknown]>>;
      };
      for (const { event, options: appendOptions } of entries) {
        void pipeline.askqAppend(...argsOf(questionId, event, appendOptions));
      }
      const results = await pipeline.exec();
      return results.map(([error, id]) => {
        if (error) throw error;
        return (id as string | null) ?? null;
      });
    },

    async read(questionId, afterId) {
      const start = afterId === undefined ? '-' : `(${afterId}`;
      const entries = await redis.xrange(keys.events(questionId), start, '+');
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
