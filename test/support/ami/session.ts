/**
 * One AMI connection on the test server: what it is allowed to see and the order in which its
 * actions run. Asterisk runs one action per session at a time (session_do → do_message), so
 * actions queue here and run one after another, even when a handler waits for the disk.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { formatEvent, type ServerEvent, type SessionFacts, EVENT_CLASSES } from './events.js';
import { RequestReader, type AmiRequest } from './wire.js';

export interface SessionHooks {
  /** Runs one action; 'close' ends the connection afterwards (Logoff, failed login). */
  run(session: AmiSession, req: AmiRequest): Promise<'keep' | 'close'>;
  isPaused(): boolean;
  /** Called for every action as it arrives, before it waits its turn. */
  received(session: AmiSession, req: AmiRequest): void;
}

export class AmiSession {
  readonly id: number;
  readonly socket: Socket;
  authenticated = false;
  username = '';
  /** send_events: 0 until login. */
  eventMask = 0;
  sessionTv = new Date(0);
  /** Legacy `Filter:` regexes (manager_add_filter without MatchCriteria). */
  readonly includeFilters: RegExp[] = [];
  readonly excludeFilters: RegExp[] = [];
  /** Asterisk prints the session's address as SessionID; any stable 48-bit hex will do. */
  readonly pointer = `0x7f${randomBytes(5).toString('hex')}`;
  private readonly queue: AmiRequest[] = [];
  private running = false;
  private closed = false;

  constructor(id: number, socket: Socket, private readonly hooks: SessionHooks) {
    this.id = id;
    this.socket = socket;
    const reader = new RequestReader((req) => {
      hooks.received(this, req);
      this.queue.push(req);
      this.pump();
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {
      // A client that resets the connection is a normal event for a server.
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  facts(): SessionFacts {
    return {
      pointer: this.pointer,
      localAddress: `IPV4/TCP/${this.socket.localAddress ?? '127.0.0.1'}/${this.socket.localPort ?? 0}`,
      remoteAddress: `IPV4/TCP/${this.socket.remoteAddress ?? '127.0.0.1'}/${this.socket.remotePort ?? 0}`,
      username: this.username,
      sessionTv: this.sessionTv,
    };
  }

  write(text: string): void {
    if (this.isOpen) this.socket.write(text, 'latin1');
  }

  /** Ends the connection after what was written has been sent (Logoff, failed login). */
  end(): void {
    this.closed = true;
    this.socket.end();
  }

  /** Whether an event goes to this session: logged in, the class asked for, and the filters pass. */
  wants(event: ServerEvent, text: string): boolean {
    if (!this.authenticated || (this.eventMask & EVENT_CLASSES[event.category]) === 0) return false;
    // should_send_event: include filters alone imply "exclude all others"; excludes apply after.
    if (this.includeFilters.length > 0 && !this.includeFilters.some((re) => re.test(text))) return false;
    return !this.excludeFilters.some((re) => re.test(text));
  }

  deliver(event: ServerEvent): void {
    const text = formatEvent(event);
    if (this.wants(event, text)) this.write(text);
  }

  /** Runs queued actions one by one, unless the server is paused (it then stops answering). */
  pump(): void {
    // After Logoff or a failed login Asterisk reads nothing more from the connection.
    if (this.running || !this.isOpen || this.hooks.isPaused()) return;
    const next = this.queue.shift();
    if (!next) return;
    this.running = true;
    void this.hooks.run(this, next)
      .then((verdict) => {
        if (verdict === 'close') this.end();
      })
      .catch((err: unknown) => {
        // A bug in the test server must fail the test loudly, not hang it.
        this.write(`Response: Error\r\nMessage: AMI test server failed: ${err instanceof Error ? err.message : String(err)}\r\n\r\n`);
      })
      .finally(() => {
        this.running = false;
        if (this.isOpen) this.pump();
      });
  }
}
