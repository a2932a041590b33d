import { z, type ZodType } from 'zod';

/** A JSON object of the OpenAPI document. */
export type Json = Record<string, unknown>;

/** JSON Schema (2020-12, what OpenAPI 3.1 uses) of a zod schema, as requests or as responses. */
export function schemaOf(schema: ZodType, io: 'input' | 'output' = 'output'): Json {
  const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  // The dialect is the document's (OpenAPI 3.1 is JSON Schema 2020-12), not each schema's.
  delete generated.$schema;
  return generated;
}

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: Json, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
