// What the commands show on a terminal or in a log: `ask`'s stage progress and streamed answer,
// results with their sources and timings, and `ingest`'s progress.
import { SingleBar } from 'cli-progress';
import type { QuestionResult, Source, StageName } from '@askq/shared';
import type { IngestProgress } from '../lib/ingest-send.js';
import type { AskqEvent } from './events.js';

const STAGES: readonly StageName[] = ['retrieval', 'generation', 'validation'];

interface StageState {
  state: 'started' | 'completed' | 'failed';
  ms?: number;
  startedAt: number;
}

/**
 * Everything `ask` writes. On a terminal, one progress line on stderr is redrawn in place; when
 * stdout is the same terminal it steps aside while the answer streams, so the two never mix.
 * Elsewhere (pipes, logs) each finished stage gets a plain line.
 */
export class AskDisplay {
  private readonly tty = process.stderr.isTTY;
  private readonly shared = process.stderr.isTTY && process.stdout.isTTY;
  private stages = new Map<StageName, StageState>();
  private status: 'queued' | 'active' = 'queued';
  private attempt = 1;
  private progressShown = false;
  private answerOpen = false;
  private ticker: NodeJS.Timeout | undefined;
  /** The answer text of the current attempt, as streamed. */
  streamed = '';

  constructor(private readonly json: boolean) {
    // Redraws so a running stage's elapsed time moves; only a terminal shows it.
    if (this.tty) this.ticker = setInterval(() => this.render(), 250).unref();
  }

  onEvent(e: AskqEvent): void {
    switch (e.event) {
      case 'status': {
        this.status = e.data.status;
        this.attempt = e.data.attempt;
        this.render();
        break;
      }
      case 'stage': {
        const data = e.data;
        const previous = this.stages.get(data.stage);
        this.stages.set(data.stage, {
          state: data.state,
          ms: data.ms,
          startedAt: previous?.startedAt ?? Date.now(),
        });
        if (data.stage === 'generation' && data.state !== 'started') this.closeAnswer();
        if (!this.tty && data.state !== 'started') {
          this.line(`${data.stage} ${data.state === 'failed' ? 'failed' : duration(data.ms)}`);
        }
        this.render();
        break;
      }
      case 'token': {
        const { text } = e.data;
        this.streamed += text;
        if (this.json) break;
        if (this.shared) this.clearProgress();
        process.stdout.write(text);
        this.answerOpen = true;
        break;
      }
      case 'retry': {
        const { attempt, reason } = e.data;
        const why =
          reason === 'escalation'
            ? 'the answer did not pass validation; the smart model writes it again'
            : reason === 'worker_lost'
              ? `a worker was lost; attempt ${attempt} starts over`
              : `attempt ${attempt} after ${reason}`;
        const discarded = this.streamed !== '' && !this.json ? ' (discard the text above)' : '';
        this.line(`retry: ${why}${discarded}`);
        this.streamed = '';
        this.stages = new Map();
        this.attempt = attempt;
        this.render();
        break;
      }
    }
  }

  /**
   * A line of its own on stderr, above the progress line. It ends the answer's line on stdout,
   * unless `midAnswer` says the answer goes on (a resumed connection): then stdout is left alone,
   * and only a terminal it shares with stderr gets a line break.
   */
  line(text: string, midAnswer = false): void {
    if (!midAnswer) this.closeAnswer();
    else if (this.answerOpen && this.shared) process.stderr.write('\n');
    this.clearProgress();
    process.stderr.write(`${text}\n`);
    this.render();
  }

  /** Leaves the final progress line (terminal) and stops redrawing. */
  finish(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.closeAnswer();
    if (this.tty && this.stages.size > 0) {
      this.clearProgress();
      process.stderr.write(`${this.progressText()}\n`);
    }
  }

  /** Clears the terminal's progress line for good, e.g. before the Ctrl-C message. */
  abandon(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.closeAnswer();
    this.clearProgress();
  }

  private closeAnswer(): void {
    if (!this.answerOpen) return;
    process.stdout.write('\n');
    this.answerOpen = false;
  }

  private clearProgress(): void {
    if (!this.progressShown) return;
    process.stderr.write('\r\x1b[2K');
    this.progressShown = false;
  }

  private render(): void {
    if (!this.tty || this.ticker === undefined || (this.shared && this.answerOpen)) return;
    process.stderr.write(`\r\x1b[2K${this.progressText()}`);
    this.progressShown = true;
  }

  private progressText(): string {
    const parts = STAGES.map((name) => {
      const stage = this.stages.get(name);
      if (!stage) return name;
      if (stage.state === 'failed') return `${name} failed`;
      if (stage.state === 'completed') return `${name} ${duration(stage.ms)}`;
      const elapsed = Date.now() - stage.startedAt;
      return elapsed < 1000 ? `${name} …` : `${name} ${duration(elapsed)} …`;
    });
    if (this.attempt > 1) parts.unshift(`attempt ${this.attempt}`);
    if (this.status === 'queued' && this.stages.size === 0) parts.unshift('queued');
    return parts.join(' · ');
  }
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '?';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** `[n] title (documentId) score 0.42`, numbered as the answer cites them. */
export function sourceLines(sources: Source[]): string[] {
  return sources.map(
    (s, i) =>
      `[${i + 1}] ${s.title ? `${s.title} (${s.documentId})` : s.documentId} score ${s.score.toFixed(2)}`,
  );
}

/** Model, route, cache and tokens; the stage timings; what failed validation, if anything. */
export function summaryLines(result: QuestionResult): string[] {
  const t = result.timings;
  const lines = [
    [
      `model ${result.model}`,
      `route ${result.route}`,
      `cached ${result.cached ? 'yes' : 'no'}`,
      `tokens ${result.usage.promptTokens} in, ${result.usage.completionTokens} out`,
    ].join(' · '),
    [
      `queue ${duration(t.queueMs)}`,
      `retrieval ${duration(t.retrievalMs)}`,
      `generation ${duration(t.generationMs)}`,
      `validation ${duration(t.validationMs)}`,
      `total ${duration(t.totalMs)}`,
    ].join(' · '),
  ];
  if (!result.validation.passed) {
    const failed = result.validation.checks.filter((c) => !c.passed);
    lines.push(
      `validation did not pass: ${failed.map((c) => (c.detail ? `${c.name} (${c.detail})` : c.name)).join(', ')}`,
    );
  }
  return lines;
}

/** The answer (unless it was streamed already), its sources on stdout, the summary on stderr. */
export function printResult(result: QuestionResult, streamed: string): void {
  if (streamed.trim() === '') process.stdout.write(`${result.answer}\n`);
  if (result.sources.length > 0)
    process.stdout.write(`\n${sourceLines(result.sources).join('\n')}\n`);
  process.stderr.write(`${summaryLines(result).join('\n')}\n`);
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A bar over chunks on a terminal; otherwise a plain line now and then, for logs and CI. */
export function createIngestProgress(): {
  update: (p: IngestProgress) => void;
  stop: () => void;
} {
  if (process.stdout.isTTY) {
    const bar = new SingleBar({
      stream: process.stdout,
      format: 'chunks [{bar}] {percentage}% | {value}/{total} | documents {docs}/{docsTotal}',
      barsize: 30,
    });
    let started = false;
    return {
      update: (p) => {
        // Totals are 0 until the worker has chunked a batch, and cli-progress draws 0/0 as 100%.
        if (p.chunksTotal === 0 && !started) return;
        const payload = { docs: p.documentsDone, docsTotal: p.documentsTotal };
        if (!started) bar.start(p.chunksTotal, p.chunksDone, payload);
        else {
          bar.setTotal(p.chunksTotal);
          bar.update(p.chunksDone, payload);
        }
        started = true;
      },
      stop: () => {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let last: IngestProgress | undefined;
  let lastAt = 0;
  return {
    update: (p) => {
      // One line a second at most, plus one whenever a batch finishes, so logs stay short.
      const batchDone = p.documentsDone !== last?.documentsDone;
      const moved =
        batchDone || p.chunksDone !== last?.chunksDone || p.chunksTotal !== last.chunksTotal;
      if (!moved || (!batchDone && Date.now() - lastAt < 1000)) return;
      console.log(
        `chunks ${p.chunksDone}/${p.chunksTotal}, documents ${p.documentsDone}/${p.documentsTotal}`,
      );
      last = p;
      lastAt = Date.now();
    },
    stop: () => {},
  };
}
