import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

/** A command as a client sent it: its name in lower case, then its arguments. */
export type RedisCommand = string[];

/** What to do with the traffic from a matching command on. */
export type FaultAction = 'stall' | 'cut';

/**
 * A TCP proxy between askq and a real Redis, for fault injection: it reads the commands clients
 * send (RESP arrays of bulk strings) and, from the first that matches a rule, stalls every
 * connection (holds what clients send, as a hung or partitioned server would) or cuts them all.
 * The matching command itself is held too (`before: true`, the default) or let through first.
 */
export interface RedisProxy {
  readonly url: string;
  /**
   * Arms a fault; resolves with the matching command once it is seen. Only one fault is armed at
   * a time, and it fires once.
   */
  on(
    match: (command: RedisCommand) => boolean,
    action: FaultAction,
    options?: { before?: boolean },
  ): Promise<RedisCommand>;
  /** Stalls every connection now. */
  stall(): void;
  /** Lets held traffic through again, and accepts connections again after a cut. */
  heal(): void;
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  server: Socket;
  parser: CommandParser;
  held: Buffer[];
}

/** Starts a proxy on a free port of 127.0.0.1 in front of `target` (host and port). */
export async function startRedisProxy(target: { host: string; port: number }): Promise<RedisProxy> {
  const links = new Set<Link>();
  let stalled = false;
  let refusing = false;
  let armed:
    | {
        match: (command: RedisCommand) => boolean;
        action: FaultAction;
        before: boolean;
        resolve: (command: RedisCommand) => void;
      }
    | undefined;

  const cutAll = () => {
    refusing = true;
    for (const link of links) {
      link.client.destroy();
      link.server.destroy();
    }
    links.clear();
  };

  // Only whole commands go through, so that one can be held back before any of its bytes left.
  const forward = (link: Link, chunk: Buffer) => {
    if (stalled) {
      link.held.push(chunk);
      return;
    }
    const commands = link.parser.push(chunk);
    for (const [i, { raw, command }] of commands.entries()) {
      const fault = armed;
      if (fault?.match(command)) {
        armed = undefined;
        if (!fault.before) link.server.write(raw);
        fault.resolve(command);
        if (fault.action === 'cut') {
          cutAll();
          return;
        }
        stalled = true;
        // What was not sent waits, in order: this command (unless it went), the ones after it,
        // and the start of the next.
        link.held.push(
          ...(fault.before ? [raw] : []),
          ...commands.slice(i + 1).map((c) => c.raw),
          link.parser.takeRest(),
        );
        return;
      }
      link.server.write(raw);
    }
  };

  const proxy: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const server = connect(target.port, target.host);
    const link: Link = { client, server, parser: new CommandParser(), held: [] };
    links.add(link);
    const drop = () => {
      links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('data', (chunk: Buffer) => forward(link, chunk));
    server.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', drop);
    server.on('close', drop);
    client.on('error', drop);
    server.on('error', drop);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const { port } = proxy.address() as { port: number };

  return {
    url: `redis://127.0.0.1:${port}`,
    on(match, action, options = {}) {
      return new Promise((resolve) => {
        armed = { match, action, before: options.before ?? true, resolve };
      });
    },
    stall() {
      stalled = true;
    },
    heal() {
      stalled = false;
      refusing = false;
      for (const link of links) {
        const held = link.held;
        link.held = [];
        for (const chunk of held) forward(link, chunk);
      }
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

/**
 * Splits a client's byte stream into commands (RESP arrays of bulk strings; inline commands do not
 * occur in what ioredis sends): `push` returns each command the chunk completed, with its bytes.
 */
class CommandParser {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ raw: Buffer; command: RedisCommand }> {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const found: Array<{ raw: Buffer; command: RedisCommand }> = [];
    let offset = 0;
    for (;;) {
      const parsed = parseArray(this.buffer, offset);
      if (!parsed) break;
      found.push({ raw: this.buffer.subarray(offset, parsed.next), command: parsed.items });
      offset = parsed.next;
    }
    this.buffer = this.buffer.subarray(offset);
    return found;
  }

  /** The bytes of a command not complete yet, handed over (the parser starts empty again). */
  takeRest(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}

function parseArray(buffer: Buffer, start: number): { items: string[]; next: number } | undefined {
  if (start >= buffer.length || buffer[start] !== 0x2a) return undefined; // '*'
  const header = readLine(buffer, start + 1);
  if (!header) return undefined;
  const count = Number(header.line);
  const items: string[] = [];
  let offset = header.next;
  for (let i = 0; i < count; i++) {
    if (offset >= buffer.length || buffer[offset] !== 0x24) return undefined; // '$'
    const size = readLine(buffer, offset + 1);
    if (!size) return undefined;
    const length = Number(size.line);
    const end = size.next + length;
    if (end + 2 > buffer.length) return undefined;
    items.push(buffer.toString('utf8', size.next, end));
    offset = end + 2;
  }
  if (items[0] !== undefined) items[0] = items[0].toLowerCase();
  return { items, next: offset };
}

function readLine(buffer: Buffer, start: number): { line: string; next: number } | undefined {
  const end = buffer.indexOf('\r\n', start);
  if (end < 0) return undefined;
  return { line: buffer.toString('latin1', start, end), next: end + 2 };
}
