// `askq ask "question"`: asks, follows the question's event stream and shows it (display.ts).
import { AskAcceptedSchema, toError, type PublicError, type QuestionResult } from '@askq/shared';
import { EventStreamError, followEvents, type StreamOutcome } from '../lib/event-stream.js';
import { networkReason } from '../lib/http.js';
import { apiError, call, readReply } from './api.js';
import { CliError, parseCommandLine, usageError, type CommandContext } from './cli.js';
import { AskDisplay, printResult } from './display.js';
import { readEvent } from './events.js';
import { ENVIRONMENT, loadTarget, type Target } from './target.js';

export const ASK_USAGE = `Usage: npm run askq -- ask "question" [options]

Asks askq, shows the stages with their timings on stderr, streams the answer to stdout, then
lists its sources (stdout) and a summary (stderr). A dropped connection is resumed where it broke.

Options:
  -c, --collection NAME  collection to search (default: the server's "default")
  -m, --model MODEL      auto (default), fast or smart
  -k, --top-k N          passages to retrieve, 1-20 (default 4)
      --no-cache         neither answer from nor join earlier questions
      --json             print {id, status, result | error} as JSON on stdout instead
      --cancel-on-exit   on Ctrl-C, cancel the question (by default it runs on)
  -h, --help             show this help

Exit: 0 answered; 1 the question failed or was cancelled; 2 bad usage, askq unreachable, or the
request refused; 130 Ctrl-C.

${ENVIRONMENT}`;

/** Resolves with the exit code; Ctrl-C (`signal`) resolves with 130 once the question is left. */
export async function ask(argv: string[], { signal }: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(ASK_USAGE, {
    args: argv,
    options: {
      collection: { type: 'string', short: 'c' },
      model: { type: 'string', short: 'm' },
      'top-k': { type: 'string', short: 'k' },
      'no-cache': { type: 'boolean' },
      json: { type: 'boolean' },
      'cancel-on-exit': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(ASK_USAGE);
    return 0;
  }
  // `ask how does it work` reads as well as `ask "how does it work"`.
  if (positionals.length === 0) throw usageError(ASK_USAGE, 'give the question to ask');
  const body: Record<string, unknown> = { question: positionals.join(' ') };
  if (values.collection !== undefined) body.collection = values.collection;
  if (values.model !== undefined) {
    if (!['auto', 'fast', 'smart'].includes(values.model)) {
      throw usageError(ASK_USAGE, `--model must be auto, fast or smart, not "${values.model}"`);
    }
    body.model = values.model;
  }
  if (values['top-k'] !== undefined) {
    // The server checks the range and says so; a non-number cannot even be sent as JSON.
    if (!/^\d+$/.test(values['top-k'])) {
      throw usageError(ASK_USAGE, `--top-k must be a whole number, not "${values['top-k']}"`);
    }
    body.topK = Number(values['top-k']);
  }
  if (values['no-cache']) body.cache = false;
  const json = values.json === true;
  const target = loadTarget(ASK_USAGE);

  let id: string | undefined;
  let display: AskDisplay | undefined;
  try {
    const reply = await call(target, 'POST', '/v1/questions', { body, signal });
    if (reply.status !== 200 && reply.status !== 202) {
      throw apiError(target, reply, 'POST /v1/questions');
    }
    const accepted = readReply(target, AskAcceptedSchema, reply.json, 'POST /v1/questions');
    id = accepted.id;
    // An exact cache hit answers at once (SPEC 6); nothing to follow.
    if (reply.status === 200 && accepted.result) {
      process.stderr.write(`question ${id} answered from the cache\n`);
      if (json) {
        process.stdout.write(
          `${JSON.stringify({ id, status: 'completed', result: accepted.result }, null, 2)}\n`,
        );
      } else printResult(accepted.result, '');
      return 0;
    }
    process.stderr.write(
      `question ${id}${accepted.coalesced ? ' (joined an identical question already running)' : ''}\n`,
    );

    display = new AskDisplay(json);
    const shown = display;
    let result: QuestionResult | undefined;
    let error: PublicError | undefined;
    let outcome: StreamOutcome;
    try {
      outcome = await followEvents({
        url: target.url + accepted.links.events,
        headers: target.headers,
        signal,
        onEvent: (raw) => {
          const e = readEvent(raw);
          if (e?.event === 'completed') result = e.data.result;
          else if (e?.event === 'failed') error = e.data.error;
          else if (e) shown.onEvent(e);
        },
        onReconnect: ({ attempt, error: why }) =>
          shown.line(`connection lost (${networkReason(why)}); resuming, try ${attempt}`, true),
      });
    } catch (e) {
      shown.abandon();
      throw followError(target, id, e);
    }
    display.finish();

    if (json) {
      const view =
        outcome === 'completed'
          ? { id, status: outcome, result }
          : { id, status: outcome, ...(error ? { error } : {}) };
      process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    }
    if (outcome === 'completed' && result) {
      if (!json) printResult(result, display.streamed);
      return 0;
    }
    if (outcome === 'failed') {
      process.stderr.write(
        `askq ask: question ${id} failed: ${error ? `${error.code}: ${error.message}` : 'no reason given'}\n`,
      );
    } else {
      process.stderr.write(`askq ask: question ${id} was cancelled\n`);
    }
    return 1;
  } catch (e) {
    if (!signal.aborted) throw e;
    display?.abandon();
    return await leave(target, id, values['cancel-on-exit'] === true);
  } finally {
    display?.abandon();
  }
}

/** Why following the stream stopped, as a CliError; Ctrl-C and other errors pass through. */
function followError(target: Target, id: string, e: unknown): unknown {
  if (!(e instanceof EventStreamError)) return e;
  const goesOn = `\nThe question may go on: npm run askq -- status ${id}`;
  if (e.reason === 'lost') {
    return new CliError(2, `${e.message} (ASKQ_URL ${target.url})${goesOn}`, { cause: e });
  }
  if (e.reason === 'unauthorized') {
    return new CliError(2, `${e.message}\nSet ASKQ_API_KEY to one of the server's API_KEYS.`);
  }
  return new CliError(2, `following question ${id}: ${e.message}${goesOn}`, { cause: e });
}

/**
 * After Ctrl-C: the question is left running (it is durable, and another client or `status` can
 * pick it up), or cancelled with --cancel-on-exit. Resolves with 130.
 */
async function leave(target: Target, id: string | undefined, cancel: boolean): Promise<number> {
  if (id === undefined) {
    process.stderr.write('askq ask: interrupted before the question was accepted\n');
  } else if (cancel) {
    const reply = await call(target, 'DELETE', `/v1/questions/${encodeURIComponent(id)}`, {
      timeoutMs: 5000,
    }).catch((e: unknown) => ({ status: 0, json: toError(e).message }));
    process.stderr.write(
      reply.status === 200 || reply.status === 202
        ? `askq ask: cancelled question ${id}\n`
        : reply.status === 409
          ? `askq ask: question ${id} had already finished\n`
          : `askq ask: could not cancel question ${id}: ${reply.status === 0 ? String(reply.json) : `HTTP ${reply.status}`}\n`,
    );
  } else {
    process.stderr.write(
      `askq ask: question ${id} goes on; see it with: npm run askq -- status ${id}\n`,
    );
  }
  return 130;
}
