// The figures of `askq eval`, as pure functions over rankings of document ids (README, "Measuring
// quality"). A ranking lists distinct documents, best first; a rank is 1-based, 0 when absent.

/** How deep recall@4 looks; also the default `topK` the questions are asked with. */
export const RECALL_DEPTH = 4;

/** The retrieval figures over a set of questions. */
export interface RetrievalScores {
  /** Share of questions whose expected document ranks first. */
  recallAt1: number;
  /** Share of questions whose expected document is among the first 4 documents. */
  recallAt4: number;
  /** Mean of 1 / rank of the expected document (0 when it is absent). */
  mrr: number;
}

/**
 * The distinct documents of a list of sources, in order: several chunks of one document count
 * once, at its first chunk's place.
 */
export function documentRanking(sources: ReadonlyArray<{ documentId: string }>): string[] {
  return [...new Set(sources.map((s) => s.documentId))];
}

/** The 1-based rank of `documentId` in a ranking of distinct documents; 0 when it is absent. */
export function rankOf(ranking: readonly string[], documentId: string): number {
  return ranking.indexOf(documentId) + 1;
}

/** recall@1, recall@4 and MRR over the ranks of each question's expected document. */
export function retrievalScores(ranks: readonly number[]): RetrievalScores {
  if (ranks.length === 0) return { recallAt1: 0, recallAt4: 0, mrr: 0 };
  const found = (depth: number) => ranks.filter((r) => r >= 1 && r <= depth).length;
  const reciprocal = ranks.reduce((sum, r) => sum + (r >= 1 ? 1 / r : 0), 0);
  return {
    recallAt1: found(1) / ranks.length,
    recallAt4: found(RECALL_DEPTH) / ranks.length,
    mrr: reciprocal / ranks.length,
  };
}

/**
 * Text as facts are compared: lower case, citation marks (`[2]`) removed, every run of
 * whitespace one space, trimmed.
 */
export function normalizeForMatch(text: string): string {
  // Whitespace is collapsed first, so at most one space stands before a mark.
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/ ?\[\d+\]/g, '')
    .trim();
}

/** Whether the answer contains the fact (any one of them, when several are given). */
export function answerHasFact(answer: string, fact: string | readonly string[]): boolean {
  const text = normalizeForMatch(answer);
  const facts = typeof fact === 'string' ? [fact] : fact;
  return facts.some((f) => {
    const wanted = normalizeForMatch(f);
    return wanted !== '' && text.includes(wanted);
  });
}

/** `count / total`, or null when there is nothing to count over. */
export function share(count: number, total: number): number | null {
  return total === 0 ? null : count / total;
}
