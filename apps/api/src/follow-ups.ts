import {
  AppError,
  boundHistory,
  type AskRequest,
  type QuestionView,
  type ResolvedAsk,
  type Turn,
} from '@askq/shared';

/**
 * The earlier turns a question carries: those the client sent, or those of the question it
 * follows up (its own turns, its text and its answer), bounded either way (`boundHistory`).
 */
export function createFollowUps(deps: {
  /** The tenant's question, as a view and as stored (404 for another tenant's). */
  read: (
    tenant: string,
    id: string,
  ) => Promise<{ view: QuestionView; stored: { history?: string } }>;
  bounds: Parameters<typeof boundHistory>[1];
}) {
  return {
    async resolve(tenant: string, asked: AskRequest): Promise<ResolvedAsk> {
      const { history = [], ...request } = asked;
      if (!request.previousQuestionId) {
        return history.length > 0
          ? { ...request, history: boundHistory(history, deps.bounds) }
          : request;
      }
      // One read gives both the view and the turns stored with it.
      const { view: previous, stored } = await deps.read(tenant, request.previousQuestionId);
      if (previous.status !== 'completed' || !previous.result) {
        throw new AppError(
          'CONFLICT',
          `question ${previous.id} is ${previous.status}: only a completed question can be followed up`,
        );
      }
      // Turns sent as well follow the earlier question's answer (as the Responses API appends
      // `input` messages to what `previous_response_id` names).
      const chain = [
        ...parseTurns(stored.history),
        { role: 'user' as const, content: previous.question },
        { role: 'assistant' as const, content: previous.result.answer },
        ...history,
      ];
      return { ...request, history: boundHistory(chain, deps.bounds) };
    },
  };
}

/** The turns stored with a record; a damaged value counts as none rather than failing the ask. */
function parseTurns(json: string | undefined): Turn[] {
  if (!json) return [];
  try {
    const turns = JSON.parse(json) as unknown;
    return Array.isArray(turns) ? (turns as Turn[]) : [];
  } catch {
    return [];
  }
}
