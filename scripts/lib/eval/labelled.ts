// The labelled file of `askq eval`: which document answers each question, and optionally a fact
// a correct answer contains. A JSON array, or JSON Lines (one object a line), told apart by
// content: a file whose first character (after spaces) is `[` is an array.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { toError } from '@askq/shared';

const Text = z.string().trim().min(1, 'must not be empty');

/** One labelled question. Other fields are ignored. */
export const LabelledQuestion = z.object({
  question: Text.max(4000, 'is longer than 4000 characters (the API refuses it)'),
  // Ids as the API takes them (SPEC 2); `askq ingest` never makes one with whitespace or '#'.
  documentId: Text.max(256, 'is longer than 256 characters').regex(
    /^[^\s#]+$/,
    'holds whitespace or "#", which no document id has',
  ),
  fact: z
    .union([Text, z.array(Text).min(1, 'is an empty list')], {
      error: 'must be a string or a list of strings',
    })
    .optional(),
});
export type LabelledQuestion = z.infer<typeof LabelledQuestion>;

/** The file is not a usable labelled file; `problems` name the line or index of each. */
export class LabelledFileError extends Error {
  constructor(
    readonly problems: string[],
    name: string,
  ) {
    super(`${name}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`);
    this.name = 'LabelledFileError';
  }
}

/** More problems than this are summed up in one line. */
const MAX_PROBLEMS = 10;

/** Parses a labelled file's text; `name` (the file) heads error messages. */
export function parseLabelled(text: string, name = 'labelled file'): LabelledQuestion[] {
  const content = text.replace(/^\uFEFF/, '');
  const entries: Array<{ where: string; value: unknown }> = [];
  const problems: string[] = [];
  if (content.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch (e) {
      throw new LabelledFileError([`not valid JSON: ${toError(e).message}`], name);
    }
    if (!Array.isArray(parsed)) throw new LabelledFileError(['not a JSON array'], name);
    parsed.forEach((value: unknown, index) => entries.push({ where: `index ${index}`, value }));
  } else {
    content.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        entries.push({ where: `line ${i + 1}`, value: JSON.parse(line) });
      } catch (e) {
        problems.push(`line ${i + 1}: not valid JSON: ${toError(e).message}`);
      }
    });
    // One object spread over several lines is neither format; say what would be.
    if (problems.length > 0 && isJson(content)) {
      throw new LabelledFileError(
        ['one JSON value, not an array of entries nor one entry a line (JSON Lines)'],
        name,
      );
    }
  }

  const questions: LabelledQuestion[] = [];
  for (const { where, value } of entries) {
    const parsed = LabelledQuestion.safeParse(value);
    if (parsed.success) questions.push(parsed.data);
    else problems.push(`${where}: ${describeIssues(parsed.error)}`);
  }
  if (problems.length > MAX_PROBLEMS) {
    const more = problems.length - MAX_PROBLEMS;
    problems.splice(MAX_PROBLEMS, more, `... and ${more} more`);
  }
  if (problems.length > 0) throw new LabelledFileError(problems, name);
  if (questions.length === 0) throw new LabelledFileError(['holds no questions'], name);
  return questions;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Reads and parses a labelled file. */
export async function loadLabelledFile(path: string, name = path): Promise<LabelledQuestion[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (toError(e) as NodeJS.ErrnoException).code;
    throw new LabelledFileError([code === 'ENOENT' ? 'not found' : `cannot read (${code})`], name);
  }
  return parseLabelled(text, name);
}

/** `"documentId": Invalid input: expected string, received undefined; "fact": ...` */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.path.length === 0
        ? issue.message
        : `"${issue.path.map(String).join('.')}": ${issue.message}`,
    )
    .join('; ');
}
