import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelledFileError, loadLabelledFile, parseLabelled } from './labelled.js';

const problemsOf = (text: string): string[] => {
  try {
    parseLabelled(text, 'f');
  } catch (e) {
    if (e instanceof LabelledFileError) return e.problems;
    throw e;
  }
  throw new Error('parsed without complaint');
};

describe('parseLabelled', () => {
  it('reads a JSON array, facts as a string or a list', () => {
    const text = JSON.stringify([
      { question: ' what are neap tides? ', documentId: 'ocean-tides', fact: 'smallest range' },
      { question: 'autolyse meaning', documentId: 'guides/sourdough', fact: ['rest', 'flour'] },
      { question: 'no fact', documentId: 'x', note: 'other fields are ignored' },
    ]);
    expect(parseLabelled(text)).toEqual([
      { question: 'what are neap tides?', documentId: 'ocean-tides', fact: 'smallest range' },
      { question: 'autolyse meaning', documentId: 'guides/sourdough', fact: ['rest', 'flour'] },
      { question: 'no fact', documentId: 'x' },
    ]);
  });

  it('reads JSON Lines, by content whatever the name, skipping blank lines', () => {
    const text =
      '\uFEFF{"question":"a?","documentId":"a"}\r\n\n  {"question":"b?","documentId":"b"}\n';
    expect(parseLabelled(text, 'questions.json')).toEqual([
      { question: 'a?', documentId: 'a' },
      { question: 'b?', documentId: 'b' },
    ]);
  });

  it('names the index of each bad entry of an array', () => {
    const problems = problemsOf(
      JSON.stringify([
        { question: 'fine', documentId: 'a' },
        { documentId: 'a' },
        'a string',
        { question: 'q', documentId: 'has space' },
        { question: 'q', documentId: 'a', fact: 5 },
        { question: '   ', documentId: 'a', fact: [] },
      ]),
    );
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatch(/^index 1: "question": .*expected string/);
    expect(problems[1]).toMatch(/^index 2: .*expected object/);
    expect(problems[2]).toMatch(/^index 3: "documentId" ?:.*whitespace/);
    expect(problems[3]).toMatch(/^index 4: "fact": must be a string or a list of strings/);
    expect(problems[4]).toMatch(
      /^index 5: "question": must not be empty; "fact": is an empty list/,
    );
  });

  it('names the line of each bad entry of JSON Lines', () => {
    const problems = problemsOf(
      '{"question":"fine","documentId":"a"}\n\n{"question":"q"}\n{not json}\n',
    );
    expect(problems).toEqual([
      expect.stringMatching(/^line 4: not valid JSON/),
      expect.stringMatching(/^line 3: "documentId": /),
    ]);
  });

  it('says what is wrong with the whole file', () => {
    expect(problemsOf('[')).toEqual([expect.stringMatching(/^not valid JSON/)]);
    expect(problemsOf('[]')).toEqual(['holds no questions']);
    expect(problemsOf('\n \n')).toEqual(['holds no questions']);
    expect(problemsOf('{\n  "question": "q",\n  "documentId": "a"\n}\n')).toEqual([
      expect.stringMatching(/one JSON value, not an array/),
    ]);
  });

  it('heads its message with the file name and stops listing after ten', () => {
    const many = JSON.stringify(Array.from({ length: 15 }, () => ({})));
    expect(() => parseLabelled(many, 'my.json')).toThrow(
      /^my\.json: \n {2}index 0: .*\.\.\. and 5 more$/s,
    );
  });
});

describe('loadLabelledFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'askq-labelled-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file, and names a missing one', async () => {
    const file = join(dir, 'q.jsonl');
    await writeFile(file, '{"question":"q","documentId":"a"}\n');
    await expect(loadLabelledFile(file)).resolves.toEqual([{ question: 'q', documentId: 'a' }]);
    await expect(loadLabelledFile(join(dir, 'nope.json'), 'nope.json')).rejects.toThrow(
      'nope.json: not found',
    );
  });
});
