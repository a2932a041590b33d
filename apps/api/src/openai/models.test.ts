import type { CollectionView } from '@askq/shared';
import { describe, expect, it } from 'vitest';
import { OpenAiRouteError, toOpenAiError } from './errors.js';
import { DEFAULT_MODEL, listModels, modelIdOf, parseModel } from './models.js';

const collection = (name: string): CollectionView => ({
  name,
  documents: 1,
  chunks: 3,
  version: 1,
  embedder: 'hash',
  dimension: 256,
});

// A tenant with two collections besides `default` (which is listed too, as the store lists it).
const collections = [collection('manuals'), collection('default'), collection('faq')];

describe('parseModel', () => {
  it.each([
    ['askq', { collection: 'default', route: 'auto' }],
    ['askq:smart', { collection: 'default', route: 'smart' }],
    ['askq:fast', { collection: 'default', route: 'fast' }],
    ['askq:auto', { collection: 'default', route: 'auto' }],
    ['askq/manuals', { collection: 'manuals', route: 'auto' }],
    ['askq/manuals:fast', { collection: 'manuals', route: 'fast' }],
    ['askq/faq:smart', { collection: 'faq', route: 'smart' }],
  ])('accepts %s', (id, expected) => {
    expect(parseModel(id, collections)).toEqual(expected);
  });

  it('accepts `default` even for a tenant without collections', () => {
    // A question to it before any document is answered "no sources", as on the native route.
    expect(parseModel('askq', [])).toEqual({ collection: 'default', route: 'auto' });
  });

  it.each([
    ['gpt-4o', 'not askq’s'],
    ['askq/missing', 'a collection the tenant does not have'],
    ['askq/bad name', 'not a collection name'],
    ['askq/', 'no collection after the slash'],
    ['askq:turbo', 'an unknown route'],
    ['askq/manuals:fast:smart', 'two routes'],
    ['ASKQ', 'another case'],
  ])('rejects %s (%s) as 404 model_not_found', (id) => {
    let thrown: unknown;
    try {
      parseModel(id, collections);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(OpenAiRouteError);
    const error = thrown as OpenAiRouteError;
    expect(error.code).toBe('NOT_FOUND');
    expect(error.openAiCode).toBe('model_not_found');
    // As OpenAI answers it: 404, its code, and `model` as the field at fault.
    expect(toOpenAiError(error)).toMatchObject({
      status: 404,
      body: { error: { type: 'not_found_error', code: 'model_not_found', param: 'model' } },
    });
  });

  it('cuts a very long id in its message', () => {
    const id = `gpt-${'x'.repeat(1_000)}`;
    expect(() => parseModel(id, collections)).toThrow(OpenAiRouteError);
    try {
      parseModel(id, collections);
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(500);
    }
  });
});

describe('listModels', () => {
  it('lists `askq` first, then each other collection once', () => {
    const list = listModels(collections, 1_700_000_000_123);
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(['askq', 'askq/manuals', 'askq/faq']);
    expect(list.data[0]).toEqual({
      id: 'askq',
      object: 'model',
      created: 1_700_000_000,
      owned_by: 'askq',
    });
  });

  it('lists `askq` for a tenant without collections', () => {
    expect(listModels([]).data.map((m) => m.id)).toEqual([DEFAULT_MODEL]);
  });

  it('lists ids that parseModel accepts, naming the same collections', () => {
    for (const model of listModels(collections).data) {
      const { collection: name } = parseModel(model.id, collections);
      expect(modelIdOf(name)).toBe(model.id);
    }
  });
});
