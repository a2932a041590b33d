/**
 * What must be equal in two questions for one's answer to serve the other, however similar their
 * embeddings: the numbers they mention and their negations. "Revenue in 2023" and "revenue in
 * 2024", or "which plans include backups" and "which plans do not include backups", embed almost
 * alike (stop words like "not" are not even embedded by the hash embedder) but want other answers.
 */
export interface QuestionSignals {
  numbers: string[];
  negations: string[];
}

const NUMBER_WORDS = new Map(
  [
    'zero one two three four five six seven eight nine ten eleven twelve',
    'thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty',
  ]
    .join(' ')
    .split(' ')
    .map((word, i) => [word, String(i)]),
);
const NEGATIONS = new Set([
  'not',
  'no',
  'never',
  'none',
  'nobody',
  'nothing',
  'neither',
  'nor',
  'without',
  'cannot',
  'except',
  'excluding',
  'unless',
]);

/** The numbers (digits or number words, as digits) and negations of a question, sorted. */
export function questionSignals(question: string): QuestionSignals {
  const text = question.normalize('NFKC').toLowerCase();
  const numbers = [...text.matchAll(/\d+(?:[.,]\d+)*/g)].map((m) =>
    m[0].replace(/,(?=\d{3}\b)/g, ''),
  );
  const negations: string[] = [];
  for (const word of text.match(/[\p{L}']+/gu) ?? []) {
    const number = NUMBER_WORDS.get(word);
    if (number !== undefined) numbers.push(number);
    // "isn't", "don't", "can't", "won't": the n't form of not.
    if (NEGATIONS.has(word) || /n't$/.test(word) || word === "can't") negations.push('not');
  }
  return { numbers: numbers.sort(), negations: negations.sort() };
}

/** Whether two questions mention the same numbers and the same negations. */
export function sameSignals(a: string, b: string): boolean {
  const x = questionSignals(a);
  const y = questionSignals(b);
  return (
    x.numbers.join('|') === y.numbers.join('|') && x.negations.join('|') === y.negations.join('|')
  );
}
