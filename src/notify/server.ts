/**
 * The service's end of `vmbridge notify`: a Unix socket that takes one request line per
 * connection (protocol.ts) and queues a reconcile of that mailbox. Asterisk runs externnotify
 * synchronously, so the answer comes as soon as the job is in Redis; nothing slower is waited for.
 */
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { VmbridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailboxRef } from '../spool/types.js';
import { formatAnswer, MAX_LINE_BYTES, parseRequest, type NotifyAnswer } from './protocol.js';

/** Group read and write: the Asterisk user reaches the socket through the service's group. */
export const SOCKET_MODE = 0o660;
/** A client that connects and says nothing is dropped after this long. */
const IDLE_MS = 2_000;
/** Asterisk runs externnotify once per mailbox change; far more at once is a stuck or hostile client. */
const MAX_CONNECTIONS = 64;

/** notify.socket cannot be listened on; the message says why and what to change. */
export class NotifySocketError extends VmbridgeError {
  readonly path: string;
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('NOTIFY_SOCKET', `notify.socket ${path}: ${problem}`, options);
    this.path = path;
  }
}

export interface NotifyServerOptions {
  readonly path: string;
  /** Queues a reconcile; 'unknown' for a mailbox the service does not have. */
  readonly onNotify: (ref: MailboxRef) => Promise<'queued' | 'unknown'>;
  readonly log: Logger;
}

export interface NotifyServer {
  readonly path: string;
  close(): Promise<void>;
}

function errCode(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/** true when a process accepts connections at `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      probe.destroy();
      if (errCode(err) === 'ECONNREFUSED') resolve(false);
      else reject(err);
    });
  });
}

function kindOf(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  return 'not a socket';
}

/**
 * A socket file left by a vmbridge that was killed is removed; anything else at the path is left
 * alone. lstat, not stat: a symbolic link planted at the path must never lead the service to
 * remove or bind what it points to.
 */
async function removeStale(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw new NotifySocketError(path, `cannot be examined (${errCode(err) ?? String(err)})`, { cause: err });
  }
  if (!st.isSocket()) {
    throw new NotifySocketError(path, `exists and is ${kindOf(st)}; vmbridge removes only a stale socket there. Remove it, or set notify.socket to another path`);
  }
  let live: boolean;
  try {
    live = await listening(path);
  } catch (err) {
    throw new NotifySocketError(path, `an existing socket there cannot be probed (${errCode(err) ?? String(err)})`, { cause: err });
  }
  if (live) throw new NotifySocketError(path, 'another process (another vmbridge?) already listens there; stop it, or give each service its own notify.socket');
  await unlink(path);
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error): void => reject(err);
    server.once('error', failed);
    server.listen({ path, exclusive: true }, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

export async function startNotifyServer(opts: NotifyServerOptions): Promise<NotifyServer> {
  const { path, log } = opts;
  // libuv reports a missing directory as EACCES; say what is really wrong.
  const dir = await stat(dirname(path)).catch((err: unknown) => (errCode(err) === 'ENOENT' ? undefined : 'other'));
  if (dir === undefined) {
    throw new NotifySocketError(path, `its directory ${dirname(path)} does not exist; create it (systemd: RuntimeDirectory=vmbridge) or set notify.socket to a path in an existing directory`);
  }
  await removeStale(path);
  const server = createServer((socket) => serve(socket, opts));
  server.maxConnections = MAX_CONNECTIONS;
  try {
    await listen(server, path);
  } catch (err) {
    const code = errCode(err);
    const what =
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `the service may not create it (${code}); make its directory writable for the service (systemd: RuntimeDirectory=vmbridge) or set notify.socket elsewhere` :
      code === 'EADDRINUSE' ? 'something was created there while vmbridge started; remove it, or set notify.socket to another path' :
      `cannot be listened on (${code ?? String(err)})`;
    throw new NotifySocketError(path, what, { cause: err });
  }
  try {
    await chmod(path, SOCKET_MODE);
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    throw new NotifySocketError(path, `cannot be given mode 0660 (${errCode(err) ?? String(err)})`, { cause: err });
  }
  server.on('error', (err) => log.warn({ err: err.message, path }, 'notify socket problem'));
  return {
    path,
    // Node removes the socket file once the server is closed.
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function serve(socket: Socket, opts: NotifyServerOptions): void {
  const { log } = opts;
  let buffered = '';
  let answered = false;
  socket.setEncoding('utf8');
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  // The client may have given up (its timeout is short) before the answer is written.
  socket.on('error', (err) => log.debug({ err: err.message }, 'notify client went away'));
  const answer = (a: NotifyAnswer): void => {
    answered = true;
    if (!socket.destroyed) socket.end(formatAnswer(a));
  };
  socket.on('data', (chunk: string) => {
    if (answered) return;
    buffered += chunk;
    const nl = buffered.indexOf('\n');
    if (nl < 0) {
      if (Buffer.byteLength(buffered) > MAX_LINE_BYTES) answer({ kind: 'error', reason: `line longer than ${MAX_LINE_BYTES} bytes` });
      return;
    }
    const line = buffered.slice(0, nl);
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      log.debug({ line: line.slice(0, MAX_LINE_BYTES), reason: parsed.reason }, 'notify request refused');
      answer({ kind: 'error', reason: parsed.reason });
      return;
    }
    answered = true;
    opts.onNotify(parsed.ref).then(
      (result) => answer({ kind: result }),
      (err: unknown) => {
        log.warn({ err: err instanceof Error ? err.message : String(err), mailbox: `${parsed.ref.mailbox}@${parsed.ref.context}` }, 'notify: cannot queue reconcile');
        answer({ kind: 'error', reason: 'cannot queue the reconcile; the sweep will find the change' });
      },
    );
  });
}
