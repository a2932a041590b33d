/** Turns texts into fixed-length vectors; one instance per collection embedder. */
export interface Embedder {
  /** Stable name recorded with each collection, so a mismatched embedder is refused. */
  readonly name: string;
  /** Length of every vector returned. */
  readonly dimension: number;
  /** One vector per text, in input order; rejects if signal aborts. */
  embed(texts: string[], signal?: AbortSignal): Promise<number[][]>;
}
