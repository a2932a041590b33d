import type { EventDataMap, EventName, LoggedEvent, QuestionResult, Source } from '@askq/shared';

// Builds a question's event log as askq's worker writes it: ids in order, data as JSON text.
export function log() {
  const events: LoggedEvent[] = [];
  const add = <K extends EventName>(event: K, data: EventDataMap[K]) => {
    events.push({ id: `${events.length + 1}-0`, event, data: JSON.stringify(data) });
    return api;
  };
  const api = {
    events,
    status: (status: 'queued' | 'active', attempt = 1) => add('status', { status, attempt }),
    stage: (stage: 'retrieval' | 'generation' | 'validation', state: 'started' | 'completed') =>
      add('stage', { stage, state }),
    sources: (sources: Source[]) => add('sources', { sources }),
    token: (text: string, attempt = 1) => add('token', { text, attempt }),
    retry: (attempt = 2) => add('retry', { attempt, reason: 'validation failed' }),
    completed: (answer: string, sources: Source[] = []) =>
      add('completed', { result: result(answer, sources) }),
    failed: (code: string, message: string) => add('failed', { error: { code, message } }),
    cancelled: () => add('cancelled', {}),
  };
  return api;
}

export function result(answer: string, sources: Source[] = []): QuestionResult {
  return {
    answer,
    sources,
    model: 'extractive',
    route: 'fast',
    cached: false,
    usage: { promptTokens: 12, completionTokens: 5 },
    timings: { queueMs: 1, retrievalMs: 2, generationMs: 3, validationMs: 4, totalMs: 10 },
    validation: { passed: true, checks: [] },
  };
}
