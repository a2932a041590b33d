// `npm run eval`: askq's answer quality on the shipped fixtures (test/fixtures/quality/), measured
// on a fresh askq of its own: started like `npm start` on free ports with a temporary data
// folder, the corpus ingested through the API, every question asked, the table printed, and
// everything stopped again. Options as `askq eval`'s, with the fixtures as defaults.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { toError } from '@askq/shared';
import {
  EVAL_OPTIONS,
  EvalCommandError,
  prepareEval,
  runEvalCommand,
  type EvalValues,
} from './lib/eval/command.js';
import { startLocalAskq, type LocalAskq } from './lib/eval/local-askq.js';
import { ingest } from './lib/ingest-send.js';

const root = resolve(import.meta.dirname, '..');
const fixtures = join(root, 'test/fixtures/quality');

const USAGE = `Usage: npm run eval [-- options]

Starts a fresh askq of its own (npm start's parts on free ports, a temporary data folder, the
environment and .env as npm start reads them, so EMBEDDINGS_* and LLM_* settings apply), ingests
the corpus into the collection "quality", asks every labelled question, prints recall@1, recall@4,
MRR, fact and validation rates beside a BM25 baseline, then stops everything.

Options:
  -f, --file FILE      labelled questions (default test/fixtures/quality/questions.json)
      --corpus PATH    files or folders to ingest and rank with BM25 (default
                       test/fixtures/quality/corpus; repeatable)
      --concurrency N  questions in flight, 1-50 (default 4)
  -k, --top-k N        passages per question, 1-20 (default 4)
  -m, --model MODEL    auto (default), fast or smart
      --json FILE      also write the summary as JSON ("-": stdout, the table on stderr)
  -h, --help           show this help

Exit: 0 every question answered; 1 some were not; 2 bad usage, or askq did not start; 130 Ctrl-C.`;

const say = (line: string) => process.stderr.write(`eval: ${line}\n`);
// `npm run` starts scripts in the package root; paths are meant from where the user typed them.
const cwd =
  process.env.npm_lifecycle_event === 'eval' && process.env.INIT_CWD
    ? process.env.INIT_CWD
    : process.cwd();

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ options: EVAL_OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    say(`${toError(e).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.collection !== undefined || values.cache !== undefined) {
    say(`--collection and --cache belong to "askq eval"\n\n${USAGE}`);
    return 2;
  }
  const chosen: EvalValues = {
    ...values,
    file: values.file ?? join(fixtures, 'questions.json'),
    corpus: values.corpus ?? [join(fixtures, 'corpus')],
    collection: 'quality',
  };
  let prepared;
  try {
    prepared = await prepareEval(chosen, positionals, cwd);
  } catch (e) {
    if (!(e instanceof EvalCommandError)) throw e;
    say(e.usage ? `${e.message}\n\n${USAGE}` : e.message);
    return 2;
  }
  const docs = prepared.corpus ?? [];

  // Ctrl-C (npm forwards its copy too) stops the run and askq; a second one, a moment later,
  // stops waiting for askq to drain.
  const interrupted = new AbortController();
  let firstSignalAt = 0;
  let askq: LocalAskq | undefined;
  const onSignal = () => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      say('interrupted: stopping askq (Ctrl-C again to stop at once)');
      interrupted.abort(new Error('interrupted'));
    } else if (Date.now() - firstSignalAt > 500) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const dataDir = await mkdtemp(join(tmpdir(), 'askq-eval-'));
  try {
    say(`starting askq (data and logs in ${dataDir})`);
    askq = await startLocalAskq({ root, dataDir, env: process.env });
    interrupted.signal.throwIfAborted();
    say(`ingesting ${docs.length} documents into the collection "quality"`);
    const ingested = await ingest({ url: askq.url, collection: 'quality', docs });
    if (ingested.failed.length > 0) {
      const failed = ingested.failed.map((f) => `${f.id}: ${f.error}`).join('\n  ');
      say(`documents not ingested, so not evaluated:\n  ${failed}`);
      return 2;
    }
    interrupted.signal.throwIfAborted();
    const { exitCode } = await runEvalCommand(prepared, {
      url: askq.url,
      cwd,
      hints: {},
      signal: interrupted.signal,
    });
    return exitCode;
  } catch (e) {
    if (interrupted.signal.aborted) return 130;
    say(toError(e).message);
    return 2;
  } finally {
    await askq?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

// Piped into `head`, the output closes early: the run still stops askq and removes its folder.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}
process.exitCode = await main();
