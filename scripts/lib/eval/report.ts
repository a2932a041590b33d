// The table `askq eval` prints: askq beside the BM25 baseline, then what each missed.
import type { EvalSummary } from './run.js';

const figure = (value: number | null | undefined) =>
  value === undefined ? '-' : value === null ? 'n/a' : value.toFixed(3);

/** The summary as lines of text for a terminal or a CI log. */
export function formatTable(summary: EvalSummary): string {
  const { collection: c, askq, bm25 } = summary;
  const lines = [
    `${summary.questions} questions, collection "${c.name}" (${c.documents} documents, ${c.chunks} chunks, embedder ${c.embedder}, ${c.dimension} dimensions), top-k ${summary.topK}`,
    '',
  ];
  const header = ['', 'recall@1', 'recall@4', 'MRR', 'fact rate', 'validation rate'];
  const rows = [
    header,
    [
      'askq',
      figure(askq.recallAt1),
      figure(askq.recallAt4),
      figure(askq.mrr),
      figure(askq.factRate),
      figure(askq.validationRate),
    ],
  ];
  if (bm25) {
    rows.push(['BM25', figure(bm25.recallAt1), figure(bm25.recallAt4), figure(bm25.mrr), '-', '-']);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) {
    lines.push(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  }
  if (!bm25) {
    lines.push('BM25 baseline left out: give --corpus <the folder you ingested> to rank it too.');
  }

  const unanswered = summary.perQuestion.filter((p) => p.askq.status !== 'completed');
  if (unanswered.length > 0) {
    lines.push('', `Not answered (${unanswered.length}), counted as misses:`);
    for (const p of unanswered) lines.push(`  ${p.question} -> ${p.askq.error ?? p.askq.status}`);
  }
  for (const [system, name] of [
    ['askq', 'askq'],
    ['bm25', 'BM25'],
  ] as const) {
    if (system === 'bm25' && !bm25) continue;
    const misses = summary.misses.filter((m) => m.system === system);
    if (misses.length === 0) {
      lines.push('', `Misses, ${name}: none`);
      continue;
    }
    lines.push('', `Misses, ${name} (${misses.length}): expected document not in the top 4`);
    for (const m of misses) {
      const found = m.found.length > 0 ? m.found.join(', ') : 'nothing';
      lines.push(`  ${m.question} (${m.documentId}) -> ${found}`);
    }
  }
  if (summary.notInCorpus) {
    lines.push(
      '',
      `Not in the corpus (${summary.notInCorpus.length}), named by the labelled file: ${summary.notInCorpus.join(', ')}`,
    );
  }
  return lines.join('\n');
}
