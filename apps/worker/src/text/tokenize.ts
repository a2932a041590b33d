// Letters, combining marks and digits; marks are included so scripts that need them stay one token.
// Decimals and dotted numbers ("0.92", "127.0.0.1") stay whole so they match only themselves.
// Apostrophes, hyphens, underscores and other punctuation split tokens.
const WORD = /\p{N}+(?:\.\p{N}+)+|[\p{L}\p{M}\p{N}]+/gu;

/** Lowercase Unicode word tokens (letters and digits, decimals kept whole) in text order. */
export function tokenize(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/** Compact English stopword list, including the fragments that splitting contractions leaves. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all also am an and any are as at be because been before ' +
    'being below between both but by can could did do does doing down during each either few for ' +
    'from further had has have having he her here hers herself him himself his how i if in into is ' +
    'it its itself just me more most my myself neither no nor not now of off on once only or other ' +
    'our ours ourselves out over own same she should so some such than that the their theirs them ' +
    'themselves then there these they this those through to too under until up very was we were ' +
    'what when where which while who whom whose why will with would you your yours yourself ' +
    'yourselves s t d ll m re ve don doesn didn isn aren wasn weren won wouldn couldn shouldn ' +
    'hasn haven hadn let us may might must shall'
  ).split(' '),
);

/**
 * Folds a plain English plural onto its singular ("caches" -> "cache"), so paraphrases still match.
 * Deliberately crude: it cannot merge unrelated words the way an aggressive stemmer can.
 */
export function foldPlural(word: string): string {
  return word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word;
}

/** Tokens of text that carry meaning: {@link tokenize} minus {@link STOPWORDS}. */
export function contentWords(text: string): string[] {
  return tokenize(text).filter((token) => !STOPWORDS.has(token));
}

// ICU breaks after these when a capital follows ("e.g. Redis", "Dr. Smith"); merging the pieces back
// is cheaper than a custom segmenter. "etc." is left out on purpose: it often does end a sentence.
const ABBREVIATION =
  /(?:^|[\s(])(?:e\.g|i\.e|vs|cf|approx|incl|mr|mrs|ms|dr|prof|fig|al|(?:\p{L}\.){1,}\p{L})\.$/iu;
const HEADING = /^#{1,6}\s+/;
const BULLET = /^(?:[-*+]|\d{1,3}[.)])\s+/;
const TABLE_ROW = /^\|/;
const FENCE = /^(?:```|~~~)/;

const segmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

/**
 * Splits text into trimmed, non-empty sentences. Markdown headings, list items, table rows and blank
 * lines are boundaries and lose their markers; other line breaks are soft wraps inside a paragraph.
 */
export function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const block of blocks(text)) {
    let pending = '';
    for (const { segment } of segmenter.segment(block)) {
      const piece = segment.trim();
      if (piece === '') continue;
      if (pending !== '' && !ABBREVIATION.test(pending)) {
        sentences.push(pending);
        pending = '';
      }
      pending = pending === '' ? piece : `${pending} ${piece}`;
    }
    if (pending !== '') sentences.push(pending);
  }
  return sentences;
}

/** Paragraph-like blocks of Markdown, markers stripped and soft-wrapped lines joined. */
function blocks(text: string): string[] {
  const result: string[] = [];
  let current: string[] = [];
  const flush = (): void => {
    if (current.length > 0) result.push(current.join(' '));
    current = [];
  };
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (line === '' || FENCE.test(line)) {
      flush();
    } else if (HEADING.test(line)) {
      flush();
      current.push(line.replace(HEADING, '').replace(/\s+#+$/, ''));
      flush();
    } else if (BULLET.test(line)) {
      flush();
      current.push(line.replace(BULLET, ''));
    } else if (TABLE_ROW.test(line)) {
      flush();
      // Separator rows (|---|:--:|) carry no text.
      const cells = line
        .split('|')
        .map((cell) => cell.trim())
        .filter((cell) => cell !== '' && !/^:?-+:?$/.test(cell));
      if (cells.length > 0) current.push(cells.join(', '));
      flush();
    } else {
      current.push(line);
    }
  }
  flush();
  return result;
}
