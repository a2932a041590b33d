import { describe, expect, it } from 'vitest';
import { createBm25Index } from './bm25.js';

const corpus = [
  {
    id: 'tides',
    title: 'Ocean tides',
    text: 'The Moon pulls the sea. Spring tides and neap tides follow its phases.',
  },
  {
    id: 'glaciers',
    title: 'Glaciers',
    text: 'Glaciers are rivers of ice. The sea level rises as glaciers melt.',
  },
  { id: 'jazz', title: 'History of jazz', text: 'Jazz began in New Orleans with brass bands.' },
];

describe('createBm25Index', () => {
  const index = createBm25Index(corpus);

  it('ranks the document that shares the rarest terms first', () => {
    expect(index.rank('What are neap tides?')[0]).toBe('tides');
    expect(index.rank('Where did jazz begin?')).toEqual(['jazz']);
    // "sea" is in two documents; "ice" only in one.
    expect(index.rank('sea ice')).toEqual(['glaciers', 'tides']);
  });

  it('indexes the title, case-insensitively', () => {
    expect(index.rank('HISTORY')).toEqual(['jazz']);
  });

  it('matches whole terms only: no prefix, no fuzzy matching', () => {
    expect(index.rank('glac')).toEqual([]);
    expect(index.rank('glaciars')).toEqual([]);
  });

  it('cuts the ranking at the limit and leaves out documents that share no term', () => {
    expect(index.rank('the sea', 1)).toHaveLength(1);
    expect(index.rank('volcano')).toEqual([]);
  });
});
