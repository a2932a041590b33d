// The BM25 baseline of `askq eval`: the corpus's whole documents (title and text) ranked for each
// question by a BM25 index (minisearch's BM25+, its default parameters) with the usual English
// analysis: lower-cased, Porter-stemmed terms (the stemmer package), as a search engine's English
// analyser indexes them. Stemming makes the baseline a stronger one to beat (recall@1 0.731 ->
// 0.866 on the shipped fixtures). minisearch's prefix and fuzzy matching are not BM25 and stay off.
import MiniSearch from 'minisearch';
import { stemmer } from 'stemmer';

/** A document as the baseline indexes it. */
export interface Bm25Document {
  id: string;
  title: string;
  text: string;
}

/** A BM25 index over a corpus. */
export interface Bm25Index {
  /** Document ids, best first, at most `limit` of them; documents sharing no term are left out. */
  rank(question: string, limit?: number): string[];
}

/** Indexes the documents (ids must be distinct) with minisearch's default tokenizer, stemmed. */
export function createBm25Index(documents: readonly Bm25Document[]): Bm25Index {
  const index = new MiniSearch<Bm25Document>({
    fields: ['title', 'text'],
    idField: 'id',
    processTerm: (term) => stemmer(term.toLowerCase()),
    searchOptions: { prefix: false, fuzzy: false, combineWith: 'OR' },
  });
  index.addAll(documents);
  return {
    rank(question, limit = Number.POSITIVE_INFINITY) {
      return index
        .search(question)
        .slice(0, limit)
        .map((hit) => String(hit.id));
    },
  };
}
