// `askq eval --file F`: scripts/lib/eval/ does the work (shared with `npm run eval`).
import { EVAL_OPTIONS, EvalCommandError, evaluate } from '../lib/eval/command.js';
import { CliError, parseCommandLine, usageError } from './cli.js';
import { ENVIRONMENT, invocationCwd, loadTarget } from './target.js';

export const EVAL_USAGE = `Usage: npm run askq -- eval --file labelled.json [--corpus DIR] [options]

Asks each labelled question ({question, documentId, fact?}: a JSON array or JSON Lines) and
prints recall@1, recall@4, MRR, fact and validation rates, beside BM25 over the corpus.

Options:
  -f, --file FILE        the labelled questions
      --corpus PATH      the files or folders you ingested (repeatable), for the BM25 baseline
  -c, --collection NAME  collection to ask (default: the server's "default")
      --concurrency N    questions in flight, 1-50 (default 4)
  -k, --top-k N          passages per question, 1-20 (default 4)
  -m, --model MODEL      auto (default), fast or smart
      --cache            let answers come from the caches (default: every one answered anew)
      --json FILE        also write the summary as JSON to FILE ("-": stdout, the table on stderr)
  -h, --help             show this help

Exit: 0 every question answered; 1 some were not (they count as misses); 2 bad usage or a bad
labelled file, askq unreachable, the key refused, or the collection missing.

${ENVIRONMENT}`;

export async function evalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(EVAL_USAGE, {
    args: argv,
    options: EVAL_OPTIONS,
  });
  if (values.help) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const { url, apiKey } = loadTarget(EVAL_USAGE);
  try {
    return await evaluate(values, positionals, { url, apiKey, cwd: invocationCwd() });
  } catch (e) {
    if (!(e instanceof EvalCommandError)) throw e;
    throw e.usage ? usageError(EVAL_USAGE, e.message) : new CliError(2, e.message);
  }
}
