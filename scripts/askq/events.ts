// A question's events as the CLI reads them: each one's data checked with the API's schema.
import type { z } from 'zod';
import { EventDataSchemas } from '@askq/shared';
import type { StreamEvent } from '../lib/event-stream.js';
import { CliError } from './cli.js';

type Schemas = typeof EventDataSchemas;
type EventName = keyof Schemas;

/** An event of SPEC 3 with its data as its schema reads it. */
export type AskqEvent = {
  [K in EventName]: { id: string; event: K; data: z.output<Schemas[K]> };
}[EventName];

const isEventName = (name: string): name is EventName => Object.hasOwn(EventDataSchemas, name);

/**
 * The event with its data checked, or undefined for an event type this CLI does not know (a newer
 * askq may send more). Data that does not fit its event's schema is a CliError (exit 2).
 */
export function readEvent(e: StreamEvent): AskqEvent | undefined {
  if (!isEventName(e.event)) return undefined;
  const parsed = EventDataSchemas[e.event].safeParse(e.data);
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new CliError(
      2,
      `askq sent a "${e.event}" event (id ${e.id}) the CLI cannot read: ${problem ? `${problem.path.join('.') || 'data'}: ${problem.message}` : JSON.stringify(e.data)}`,
    );
  }
  // The schema was picked by the name, so name and data agree.
  return { id: e.id, event: e.event, data: parsed.data } as AskqEvent;
}
