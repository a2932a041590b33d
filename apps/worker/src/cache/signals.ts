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
  // Any script's digits (٢٠٢٣ is 2023), and the sign: -5 is not 5.
  const numbers = [...text.matchAll(/[-−]?\p{Nd}+(?:[.,]\p{Nd}+)*/gu)].map((m) =>
    toAsciiDigits(m[0])
      .replace('−', '-')
      .replace(/,(?=\d{3}\b)/g, ''),
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

/** Decimal digits of any script as ASCII ones. */
function toAsciiDigits(text: string): string {
  return text.replace(/\p{Nd}/gu, (digit) => {
    const code = digit.codePointAt(0)!;
    // Unicode keeps each script's digits 0-9 in a run: the offset from the run's zero.
    for (let zero = code; zero > code - 10; zero--) {
      if (!/\p{Nd}/u.test(String.fromCodePoint(zero - 1))) return String(code - zero);
    }
    return digit;
  });
}
