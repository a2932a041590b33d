// `askq status <id>`: a question's status, stage, attempts, timings, and its answer or error.
import { QuestionViewSchema } from '@askq/shared';
import { apiError, call, readReply } from './api.js';
import { CliError, parseCommandLine, usageError } from './cli.js';
import { sourceLines, summaryLines } from './display.js';
import { ENVIRONMENT, loadTarget } from './target.js';

export const STATUS_USAGE = `Usage: npm run askq -- status <id> [--json]

Shows a question's status, stage, attempts, timings, and its answer or error.

Options:
      --json  print the question as the API returns it
  -h, --help  show this help

Exit: 0 when the question was found, whatever its status (a failed question too: read the
status line, or "status" in --json); 2 when it does not exist (or expired, or belongs to another
key's tenant), askq is unreachable or refuses the key.

${ENVIRONMENT}`;

export async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(STATUS_USAGE, {
    args: argv,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(STATUS_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === '') {
    throw usageError(STATUS_USAGE, 'give exactly one question id');
  }
  const id = positionals[0]!;
  const target = loadTarget(STATUS_USAGE);
  const reply = await call(target, 'GET', `/v1/questions/${encodeURIComponent(id)}`);
  if (reply.status === 404) {
    throw new CliError(
      2,
      `no question ${id} at ${target.url} (unknown, expired, or another key's tenant)`,
    );
  }
  if (reply.status !== 200) throw apiError(target, reply, `GET /v1/questions/${id}`);
  const view = readReply(target, QuestionViewSchema, reply.json, `GET /v1/questions/${id}`);
  if (values.json) {
    // As the API returned it, fields this CLI does not know included.
    process.stdout.write(`${JSON.stringify(reply.json, null, 2)}\n`);
    return 0;
  }
  const rows: Array<[string, string | undefined]> = [
    ['id', view.id],
    ['status', view.status],
    ['stage', view.stage],
    ['attempts', String(view.attempts)],
    ['collection', view.collection],
    ['question', view.question],
    ['created', view.createdAt],
    ['started', view.startedAt],
    ['finished', view.finishedAt],
    ['error', view.error ? `${view.error.code}: ${view.error.message}` : undefined],
  ];
  const out = rows.flatMap(([name, value]) =>
    value === undefined ? [] : [`${name.padEnd(11)}${value}`],
  );
  if (view.result) {
    const labels = ['result', 'timings', 'validation'];
    out.push(...summaryLines(view.result).map((l, i) => `${(labels[i] ?? '').padEnd(11)}${l}`));
    out.push('', view.result.answer);
    if (view.result.sources.length > 0) out.push('', ...sourceLines(view.result.sources));
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
