/**
 * A loopback TCP relay between vmbridge and the test Dovecot that writes down every IMAP command
 * vmbridge sends, so a test can show what was never sent (a bare EXPUNGE, a CLOSE) rather than
 * infer it. Literals (APPEND data, {n} strings) are skipped by their announced length, so message
 * content is never mistaken for a command. The upstream port may be set after the relay listens.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createInflateRaw, type InflateRaw } from 'node:zlib';

/** One client connection through the tap. */
export interface TapConnection {
  readonly id: number;
  readonly openedAt: number;
  /** When either side closed it; undefined while open. */
  closedAt: number | undefined;
  /** This connection's command lines (as in ImapTap.commands), each with when it was read. */
  readonly lines: { readonly at: number; readonly line: string }[];
}

export interface ImapTap {
  readonly port: number;
  /** Where connections are relayed to (127.0.0.1). Set before the first client connects. */
  upstreamPort: number | undefined;
  /** Every command line sent by any client, tag included, literals shown as {n}. */
  readonly commands: string[];
  /** Commands as `VERB` or `UID VERB` (upper case), tag and arguments removed. */
  verbs(): string[];
  /** Every connection made through the tap, open or closed, in the order they came. */
  readonly connections: readonly TapConnection[];
  /** Cuts every open connection at once, as a network failure would. */
  dropAll(): void;
  close(): Promise<void>;
}

/** Splits a client's byte stream into command lines, skipping literal payloads. */
class CommandReader {
  private buffer = Buffer.alloc(0);
  private literalLeft = 0;
  private current = '';

  constructor(private readonly onCommand: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buffer.length);
        this.buffer = this.buffer.subarray(take);
        this.literalLeft -= take;
        if (this.literalLeft > 0) return;
        continue;
      }
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) return;
      const line = this.buffer.subarray(0, end).toString('latin1');
      this.buffer = this.buffer.subarray(end + 2);
      this.current += line;
      // "{12}" or "{12+}" (LITERAL+), optionally "~{12}" (BINARY): that many raw bytes follow,
      // then the same command goes on.
      const literal = /~?\{(\d+)\+?\}$/.exec(line);
      if (literal) {
        this.literalLeft = Number(literal[1]);
        continue;
      }
      this.onCommand(this.current);
      this.current = '';
    }
  }
}

export async function startImapTap(): Promise<ImapTap> {
  const commands: string[] = [];
  const connections: TapConnection[] = [];
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  let tap: ImapTap;
  const server: Server = createServer((client) => {
    sockets.add(client);
    const record: TapConnection = { id: connections.length + 1, openedAt: Date.now(), closedAt: undefined, lines: [] };
    connections.push(record);
    const port = tap.upstreamPort;
    if (port === undefined) {
      record.closedAt = Date.now();
      client.destroy();
      return;
    }
    clients.add(client);
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.add(upstream);
    // After COMPRESS DEFLATE (RFC 4978; imapflow sends it where the server offers it, as Cyrus
    // does) the client writes raw deflate: from then on its bytes are read inflated.
    let inflater: InflateRaw | undefined;
    const reader = new CommandReader((line) => {
      commands.push(line);
      record.lines.push({ at: Date.now(), line });
      if (/^\S+ COMPRESS DEFLATE$/i.test(line)) {
        inflater = createInflateRaw();
        inflater.on('data', (d: Buffer) => reader.push(d));
        inflater.on('error', () => undefined);
      }
    });
    client.on('data', (chunk: Buffer) => {
      if (inflater) inflater.write(chunk);
      else reader.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const closeBoth = (): void => {
      record.closedAt ??= Date.now();
      clients.delete(client);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the IMAP tap has no port');
  tap = {
    port: address.port,
    upstreamPort: undefined,
    commands,
    verbs: () =>
      commands.map((c) => {
        const words = c.split(' ').slice(1, 3).map((w) => w.toUpperCase());
        return words[0] === 'UID' ? `UID ${words[1] ?? ''}` : (words[0] ?? '');
      }),
    connections,
    dropAll() {
      for (const c of [...clients]) c.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return tap;
}
