import type { AskRequest } from '@askq/shared';
import type { Idempotency, StoredResponse } from './idempotency.js';
import type { QuestionService } from './question-service.js';

/** What `POST /v1/questions` answers, and what an Idempotency-Key replays. */
export interface AcceptedBody {
  id: string;
  status: string;
  createdAt: string;
  links: { self: string; events: string };
  coalesced?: true;
  cached?: true;
  result?: unknown;
}

/**
 * Takes a question, once per Idempotency-Key: the native route and the OpenAI-compatible ones
 * share it, so a key replays the same question whichever route it was sent to again.
 */
export function createAsking(questions: QuestionService, idempotency: Idempotency) {
  const accept = async (
    tenant: string,
    request: AskRequest,
    admitted: Promise<void>,
  ): Promise<StoredResponse> => {
    const { kind, view } = await questions.ask(tenant, request, admitted);
    const self = `/v1/questions/${view.id}`;
    const body: AcceptedBody = {
      id: view.id,
      status: view.status,
      createdAt: view.createdAt,
      links: { self, events: `${self}/events` },
    };
    // SPEC 2: an exact cache hit answers at once with the result; a joined question says so.
    if (kind === 'cached')
      return { status: 200, body: { ...body, cached: true, result: view.result } };
    if (kind === 'coalesced') return { status: 202, body: { ...body, coalesced: true } };
    return { status: 202, body };
  };

  /** `admitted` is the rate limit's decision; nothing is written before it. */
  return async (
    tenant: string,
    request: AskRequest,
    admitted: Promise<void>,
    key: string | undefined,
  ): Promise<{ status: number; body: AcceptedBody }> => {
    if (key === undefined) return narrow(await accept(tenant, request, admitted));
    await admitted;
    const decision = await idempotency.begin(tenant, key, request);
    if (decision.kind === 'replay') return narrow(decision.response);
    let response: StoredResponse;
    try {
      response = await accept(tenant, request, admitted);
    } catch (e) {
      // Not accepted: the same key may be tried again.
      await decision.abandon().catch(() => undefined);
      throw e;
    }
    await decision.complete(response);
    return narrow(response);
  };
}

/** Asks a question, once per Idempotency-Key. */
export type Asking = ReturnType<typeof createAsking>;

const narrow = (response: StoredResponse) => response as { status: number; body: AcceptedBody };
