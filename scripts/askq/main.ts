// `npm run askq -- <ask|status|ingest|eval> ...`: the command-line client of a running askq (issue 9).
// Exit codes: 0 done; 1 the question failed or was cancelled (ask), or a file was not ingested
// (ingest); 2 bad usage, askq unreachable, or a request refused (4xx) or failed (5xx); 130 Ctrl-C.
import { toError } from '@askq/shared';
import { ask } from './ask.js';
import { CliError, type Command } from './cli.js';
import { evalCommand } from './eval.js';
import { ingestCommand } from './ingest.js';
import { status } from './status.js';
import { ENVIRONMENT } from './target.js';

const USAGE = `Usage: npm run askq -- <command> [options]

Commands:
  ask "question"     ask a question: stage progress, the answer as it streams, its sources
  status <id>        a question's status, stage, attempts, timings and answer or error
  ingest <paths...>  send .md/.txt files (folders searched recursively) to a collection
  eval --file F      measure answer quality on labelled questions, beside a BM25 baseline

"npm run askq -- <command> --help" shows a command's options.

${ENVIRONMENT}`;

/** The commands, and whether one handles Ctrl-C itself (the others are ended by it, as usual). */
const COMMANDS: Record<string, { run: Command; handlesInterrupt?: boolean }> = {
  ask: { run: ask, handlesInterrupt: true },
  status: { run: status },
  ingest: { run: ingestCommand },
  eval: { run: evalCommand },
};

async function main(argv: string[], interrupted: AbortController): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new CliError(2, `name a command\n\n${USAGE}`);
  if (command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) throw new CliError(2, `unknown command "${command}"\n\n${USAGE}`);
  // The first Ctrl-C asks the command to stop (ask leaves or cancels its question); a second
  // one exits at once.
  const onSigint = () => {
    process.once('SIGINT', () => process.exit(130));
    interrupted.abort();
  };
  if (entry.handlesInterrupt) process.once('SIGINT', onSigint);
  try {
    return await entry.run(rest, { signal: interrupted.signal });
  } catch (e) {
    const err = toError(e);
    if (err instanceof CliError) err.message = `askq ${command}: ${err.message}`;
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

const interrupted = new AbortController();
try {
  process.exitCode = await main(process.argv.slice(2), interrupted);
} catch (e) {
  const err = toError(e);
  if (!(err instanceof CliError)) throw err;
  process.stderr.write(`${err.message.startsWith('askq') ? '' : 'askq: '}${err.message}\n`);
  process.exitCode = err.exitCode;
}
// After Ctrl-C nothing is left to wait for, not even a connection still closing.
if (interrupted.signal.aborted) process.exit(process.exitCode);
