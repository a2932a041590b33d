import { NamePattern, type CollectionView, type ModelChoice } from '@askq/shared';
import { OpenAiRouteError } from './errors.js';

/** The model id of the tenant's `default` collection. */
export const DEFAULT_MODEL = 'askq';

/** What an OpenAI `model` names in askq: a collection to ask, and the route to take. */
export interface AskqModel {
  collection: string;
  route: ModelChoice;
}

/**
 * Model ids: `askq` asks the `default` collection, `askq/<collection>` another one; `:fast` or
 * `:smart` after either picks the route (`askq/manuals:smart`), and without one the router picks.
 */
const MODEL_ID = /^askq(?:\/([^:]+))?(?::(auto|fast|smart))?$/;

/** The model id that names a collection (the route is the caller's choice, not part of it). */
export function modelIdOf(collection: string): string {
  return collection === 'default' ? DEFAULT_MODEL : `${DEFAULT_MODEL}/${collection}`;
}

/**
 * The collection and route a model id names; 404 `model_not_found` (as OpenAI answers) for an id
 * that is not askq's or names a collection the tenant does not have. `default` always exists: a
 * question to it before any document is answered "no sources", as on the native route.
 */
export function parseModel(id: string, collections: readonly CollectionView[]): AskqModel {
  const match = MODEL_ID.exec(id);
  const collection = match?.[1] ?? 'default';
  if (
    !match ||
    !NamePattern.test(collection) ||
    (collection !== 'default' && !collections.some((c) => c.name === collection))
  ) {
    throw new OpenAiRouteError(
      'NOT_FOUND',
      `The model '${id.slice(0, 200)}' does not exist: GET /v1/models lists this key's models (askq, askq/<collection>, with :fast or :smart to pick the route)`,
      'model_not_found',
      'model',
    );
  }
  return { collection, route: (match[2] as ModelChoice | undefined) ?? 'auto' };
}

/** `GET /v1/models`: one model per collection of the tenant, `askq` (its `default`) first. */
export function listModels(collections: readonly CollectionView[], now = Date.now()) {
  const names = ['default', ...collections.map((c) => c.name).filter((n) => n !== 'default')];
  return {
    object: 'list' as const,
    data: names.map((name) => ({
      id: modelIdOf(name),
      object: 'model' as const,
      // Collections keep no creation time; clients only display it.
      created: Math.floor(now / 1_000),
      owned_by: 'askq',
    })),
  };
}
