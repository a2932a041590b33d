// Letters, combining marks and digits; marks are included so scripts that need them stay one token.
// Decimals and dotted numbers ("0.92", "127.0.0.1") stay whole so they match only themselves.
// Apostrophes, hyphens, underscores and other punctuation split tokens. Nothing in the pattern can
// fail after consuming characters, so one scan over the text finds every token: linear time.
const WORD = /[\p{L}\p{M}\p{N}]+(?:\.\p{N}+)*/gu;

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
const ABBREVIATIONS: ReadonlySet<string> = new Set(
  'e.g i.e vs cf approx incl mr mrs ms dr prof fig al'.split(' '),
);
// Dotted initials such as "U.S." or "e.g.": anchored at both ends, so it tests one short word once.
const INITIALS = /^(?:\p{L}\.)+\p{L}$/u;
// Abbreviations are short; a longer last word is never one, and is not even looked at.
const ABBREVIATION_MAX_CHARS = 16;

/**
 * Whether a piece of text ends in an abbreviation ("… e.g.", "Dr."), after which ICU's break is
 * not the end of a sentence. Only the piece's last word is examined, so the cost does not grow with
 * the text before it: merging a run of "Dr. Dr. Dr. …" stays linear.
 */
function endsWithAbbreviation(piece: string): boolean {
  if (!piece.endsWith('.')) return false;
  let start = piece.length - 1;
  const floor = Math.max(0, piece.length - 1 - ABBREVIATION_MAX_CHARS);
  while (start > floor && !isWordBoundary(piece.charCodeAt(start - 1))) start--;
  if (start > 0 && !isWordBoundary(piece.charCodeAt(start - 1))) return false;
  const word = piece.slice(start, -1).toLowerCase();
  return ABBREVIATIONS.has(word) || INITIALS.test(word);
}

/** Whitespace or an opening parenthesis: what may precede an abbreviation. */
function isWordBoundary(code: number): boolean {
  return code === 0x28 || isWhitespace(code);
}

const HEADING = /^#{1,6}\s+/;
const BULLET = /^(?:[-*+]|\d{1,3}[.)])\s+/;
const TABLE_ROW = /^\|/;
const FENCE = /^(?:```|~~~)/;

const segmenter = new Intl.Segmenter('en', { granularity: 'sentence' });
// ICU's sentence segmenter is quadratic on some inputs ("Ab. Ab. Ab. …": 64 KB took 0.6 s here,
// 1 MB would take minutes), so it only ever sees windows of this many characters.
const SEGMENT_WINDOW = 1_000;

/**
 * ICU's sentence segments of a block, found window by window so the cost stays linear. A window's
 * last segment may have been cut by the window's end, so it is segmented again at the start of
 * the next window. A window that holds one segment only (a sentence longer than a window) is
 * carried over whole into the next, so a long sentence comes out in one piece, as ICU gives it.
 */
export function* sentenceSegments(block: string): Generator<string> {
  let pos = 0;
  let carry = '';
  while (pos < block.length) {
    let end = Math.min(block.length, pos + SEGMENT_WINDOW);
    if (end < block.length) {
      const space = lastWhitespace(block, pos + SEGMENT_WINDOW / 2, end);
      if (space > pos) end = space;
      // Never between the two halves of a surrogate pair.
      else if (isLowSurrogate(block.charCodeAt(end))) end--;
    }
    const segments = [...segmenter.segment(block.slice(pos, end))].map((s) => s.segment);
    if (end < block.length && segments.length === 1) {
      carry += segments[0];
      pos = end;
      continue;
    }
    const last = end < block.length ? segments.pop() : undefined;
    segments[0] = carry + (segments[0] ?? '');
    carry = '';
    for (const segment of segments) yield segment;
    pos = end - (last?.length ?? 0);
  }
  if (carry !== '') yield carry;
}

function lastWhitespace(text: string, from: number, to: number): number {
  for (let i = to; i > from; i--) if (isWhitespace(text.charCodeAt(i - 1))) return i;
  return -1;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0xa0;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** A sentence of a text, or one of its Markdown headings. */
export interface TextUnit {
  text: string;
  /** The heading's level (1 for `#`, up to 6), 0 for a sentence. */
  heading: number;
}

/**
 * Splits text into trimmed, non-empty sentences. Markdown headings, list items, table rows and blank
 * lines are boundaries and lose their markers; other line breaks are soft wraps inside a paragraph.
 */
export function splitSentences(text: string): string[] {
  return splitUnits(text).map((unit) => unit.text);
}

/** {@link splitSentences}, with each heading kept whole and marked with its level. */
export function splitUnits(text: string): TextUnit[] {
  const units: TextUnit[] = [];
  for (const block of blocks(text)) {
    if (block.heading > 0) {
      units.push(block);
      continue;
    }
    let pending = '';
    // Whether the next piece continues the last one's sentence: after an abbreviation, or where
    // ICU broke with no space after the mark (it ends a sentence at any "?" or "!", so the query
    // string in "`?lastEventId=`" or "Yahoo!Mail" would be cut, and come back with a space in it).
    let mergeNext = false;
    let glued = false;
    for (const segment of sentenceSegments(block.text)) {
      const piece = segment.trim();
      if (piece === '') continue;
      if (pending !== '' && !mergeNext) {
        units.push({ text: pending, heading: 0 });
        pending = '';
      }
      pending = pending === '' ? piece : `${pending}${glued ? '' : ' '}${piece}`;
      glued = !isWhitespace(segment.charCodeAt(segment.length - 1));
      mergeNext = glued || endsWithAbbreviation(piece);
    }
    if (pending !== '') units.push({ text: pending, heading: 0 });
  }
  return units;
}

/** Paragraph-like blocks of Markdown, markers stripped and soft-wrapped lines joined. */
function blocks(text: string): TextUnit[] {
  const result: TextUnit[] = [];
  let current: string[] = [];
  const flush = (heading = 0): void => {
    if (current.length > 0) result.push({ text: current.join(' '), heading });
    current = [];
  };
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (line === '' || FENCE.test(line)) {
      flush();
    } else if (HEADING.test(line)) {
      flush();
      const heading = stripClosingHashes(line.replace(HEADING, ''));
      if (heading !== '') current.push(heading);
      flush(HEADING.exec(line)![0].trim().length);
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

/**
 * A heading's text without its optional closing run of `#` ("## Title ##" -> "Title"), which
 * Markdown counts only after whitespace. A loop from the end instead of /\s+#+$/, whose
 * backtracking is quadratic over a long run of spaces.
 */
function stripClosingHashes(heading: string): string {
  let end = heading.length;
  while (end > 0 && heading.charCodeAt(end - 1) === 0x23) end--;
  if (end === heading.length) return heading;
  if (end === 0) return '';
  const before = heading.charCodeAt(end - 1);
  return before === 0x20 || before === 0x09 ? heading.slice(0, end).trimEnd() : heading;
}
