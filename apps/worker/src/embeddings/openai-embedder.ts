import OpenAI from 'openai';
import { AppError } from '@askq/shared';
import type { Embedder } from './embedder.js';

/** Settings of an OpenAI-compatible `/v1/embeddings` client. */
export interface OpenAiEmbedderOptions {
  baseURL: string;
  apiKey: string;
  model: string;
  /** Texts per request. */
  batchSize: number;
  /** Per request, in milliseconds. */
  timeoutMs: number;
  /** The SDK's retries of 429, 5xx and network errors, with its own backoff and Retry-After. */
  maxRetries: number;
}

/**
 * Embeds through any OpenAI-compatible server in batches. Unlike chat streams, an embeddings call
 * is one bounded request, so the SDK's timeout and retries fit; the job's attempts come on top.
 * The dimension is learned from the first answer (models differ, and some let you choose).
 */
export function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
  let dimension = 0;

  return {
    name: `openai:${options.model}`,
    get dimension() {
      return dimension;
    },
    async embed(texts, signal) {
      const vectors: number[][] = [];
      for (let i = 0; i < texts.length; i += options.batchSize) {
        const batch = texts.slice(i, i + options.batchSize);
        let response: OpenAI.CreateEmbeddingResponse;
        try {
          response = await client.embeddings.create(
            { model: options.model, input: batch },
            signal ? { signal } : {},
          );
        } catch (e) {
          throw classify(e);
        }
        // The API may answer out of order; `index` is the position in the batch.
        const ordered = [...response.data].sort((a, b) => a.index - b.index);
        if (ordered.length !== batch.length) {
          throw new AppError(
            'EMBEDDINGS_UNAVAILABLE',
            `the embeddings server returned ${ordered.length} vectors for ${batch.length} texts`,
            { retryable: true },
          );
        }
        vectors.push(...ordered.map((d) => d.embedding));
      }
      if (vectors[0]) dimension = vectors[0].length;
      return vectors;
    },
  };
}

function classify(e: unknown): AppError {
  if (e instanceof OpenAI.APIError && typeof e.status === 'number' && e.status < 500) {
    const status: number = e.status;
    if (status !== 429) {
      return new AppError('EMBEDDINGS_UNAVAILABLE', `the embeddings server answered ${status}`, {
        cause: e,
      });
    }
  }
  return new AppError('EMBEDDINGS_UNAVAILABLE', 'the embeddings server could not be used', {
    cause: e,
    retryable: true,
  });
}
