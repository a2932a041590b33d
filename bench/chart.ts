// `npm run bench:chart [-- <out.svg>]`: draws docs/performance.svg from the benches' JSON
// summaries kept in docs/bench/ (growth.json, and ratios.json: each figure's ratio and its
// target). Vega-Lite renders it headless, no browser needed.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const docs = join(import.meta.dirname, '..', 'docs');

interface Stat {
  p50: number;
  p99: number;
}
interface Growth {
  askq: {
    retrieval: Array<{ chunks: number; askqRetrievalMs: Stat; rawQueryMs: Stat }>;
    semantic: Array<{ entries: number; lookupMs: Stat; storeMs: Stat }>;
  };
}
interface Ratios {
  figures: Array<{ figure: string; ratio: number; target: number; better: 'lower' | 'higher' }>;
}

const growth = JSON.parse(await readFile(join(docs, 'bench', 'growth.json'), 'utf8')) as Growth;
const ratios = JSON.parse(await readFile(join(docs, 'bench', 'ratios.json'), 'utf8')) as Ratios;

const retrieval = growth.askq.retrieval.flatMap((r) => [
  { chunks: r.chunks, series: 'askq retrieval p50', ms: r.askqRetrievalMs.p50 },
  { chunks: r.chunks, series: 'askq retrieval p99', ms: r.askqRetrievalMs.p99 },
  { chunks: r.chunks, series: 'raw chromadb query p50', ms: r.rawQueryMs.p50 },
]);
const semantic = growth.askq.semantic.flatMap((s) => [
  { entries: s.entries, series: 'lookup p50', ms: s.lookupMs.p50 },
  { entries: s.entries, series: 'store p50 (until in Chroma)', ms: s.storeMs.p50 },
]);
const line = (x: string, title: string) => ({
  width: 300,
  height: 200,
  mark: { type: 'line', point: true },
  encoding: {
    x: { field: x, type: 'quantitative', scale: { type: 'log' }, title },
    y: { field: 'ms', type: 'quantitative', title: 'ms' },
    color: { field: 'series', type: 'nominal', legend: { orient: 'bottom', columns: 1 } },
  },
});

const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: 'askq performance: growth, and ratios to the raw parts (same run)',
  config: { font: 'sans-serif' },
  hconcat: [
    {
      ...line('chunks', 'chunks in the collection'),
      data: { values: retrieval },
      title: 'Retrieval as the collection grows',
    },
    {
      ...line('entries', 'semantic cache entries'),
      data: { values: semantic },
      title: 'Semantic cache as it grows',
    },
    {
      width: 300,
      height: 200,
      title: 'Ratio to the raw parts (rule: target)',
      data: {
        values: ratios.figures.map((f) => ({
          ...f,
          met: f.better === 'lower' ? f.ratio <= f.target : f.ratio >= f.target,
        })),
      },
      layer: [
        {
          mark: 'bar',
          encoding: {
            y: { field: 'figure', type: 'nominal', sort: null, title: null },
            x: { field: 'ratio', type: 'quantitative', title: 'askq / raw' },
            color: {
              field: 'met',
              type: 'nominal',
              scale: { domain: [true, false], range: ['#2e7d32', '#c62828'] },
              legend: { title: 'target met', orient: 'bottom' },
            },
          },
        },
        {
          mark: { type: 'tick', color: 'black', thickness: 2 },
          encoding: {
            y: { field: 'figure', type: 'nominal', sort: null },
            x: { field: 'target', type: 'quantitative' },
          },
        },
      ],
    },
  ],
};

const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
const out = process.argv[2] ?? join(docs, 'performance.svg');
await writeFile(out, await view.toSVG());
console.log(`wrote ${out}`);
