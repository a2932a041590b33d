// What every askq command shares: the error that ends it with an exit code, and its options.
import { parseArgs } from 'node:util';
import { toError } from '@askq/shared';

/** Ends the command with this exit code after printing the message on stderr. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Bad usage: exit 2, the message followed by the command's usage text. */
export const usageError = (usage: string, message: string) =>
  new CliError(2, `${message}\n\n${usage}`);

/** parseArgs, strict, with positionals; its own messages name the unknown option or value. */
export function parseCommandLine<T extends Parameters<typeof parseArgs>[0]>(
  usage: string,
  config: T,
) {
  try {
    return parseArgs({ ...config, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(usage, toError(e).message);
  }
}

/** What a command gets besides its arguments. */
export interface CommandContext {
  /** Aborted on Ctrl-C, for the commands main.ts lets handle it. */
  signal: AbortSignal;
}

/** A command: resolves with its exit code, or throws a CliError. */
export type Command = (argv: string[], context: CommandContext) => Promise<number>;
