/**
 * A typed client for the Asterisk Manager Interface (AMI), used by the MWI targets
 * (VoicemailRefresh on the Asterisk that owns the spool, MWIUpdate on the others) and to ask
 * Asterisk to move or remove messages.
 *
 * It speaks AMI itself over `node:net` instead of through the `asterisk-manager` package; see
 * docs/ami.md ("Why not asterisk-manager") for the defects that decided this. What it guarantees:
 * - every name and value is checked before anything is written (CR, LF or NUL → AmiUnsafeValueError);
 * - ActionIDs are `<random prefix>-<counter>`: unique per client, never reused, never guessed;
 * - every action has a timeout (default 5 s); on timeout its entry is removed and late replies are dropped;
 * - list actions (`EventList: start`) resolve only after their `...Complete` event, with the items;
 * - nothing is ever re-sent on its own: an action in flight when the connection drops fails with
 *   AmiConnectionError, because it may or may not have run (a replayed VoicemailMove or a stale
 *   MWIUpdate would be worse than a reported failure). The caller's queue decides about retries;
 * - after a drop it reconnects with capped exponential backoff and logs in again.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { VmbridgeError } from '../errors.js';
import { certificateError, tlsConnectOptions, type TlsSettings } from '../tls.js';
import { AmiFrameReader, AmiMessage, AmiUnsafeValueError, assertHeaderValue, encodeAction, type AmiHeader } from './ami-wire.js';

export { AmiMessage, AmiUnsafeValueError } from './ami-wire.js';
export type { AmiHeader } from './ami-wire.js';

/** An unsolicited event, or an item of a list response. */
export type AmiEvent = AmiMessage;

export interface AmiReconnectOptions {
  /** First wait after a drop. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** The wait doubles per failed attempt up to this. Default 30 s. */
  readonly maxDelayMs?: number;
}

export interface AmiClientOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
  /**
   * Which events this session receives: true (default: whatever manager.conf `read` allows),
   * false (none: a request-only connection), or event classes such as ['call'].
   */
  readonly events?: boolean | readonly string[];
  /** Default timeout of every action, login included. Default 5000 ms. */
  readonly actionTimeoutMs?: number;
  /** TCP connect plus banner. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** false: stay down after a drop. Default: reconnect with backoff. */
  readonly reconnect?: false | AmiReconnectOptions;
  /** A Ping this often finds half-open connections. Default 30 s; 0 turns it off. */
  readonly keepaliveMs?: number;
  /** Readable start of every ActionID (letters, digits, `_`, `.`). A random part is always added. */
  readonly actionIdPrefix?: string;
  /** AMI over TLS (manager.conf tlsenable), the certificate checked as these settings say. */
  readonly tls?: TlsSettings;
  /** The settings block of `tls`, named in certificate errors. Default `asterisk.ami.tls`. */
  readonly tlsSettingsKey?: string;
}

export interface ActionOptions {
  /** Overrides the client's actionTimeoutMs for this action. */
  readonly timeoutMs?: number;
  /**
   * The action answers with a list (`EventList: start` ... `<X>Complete`). Lists are recognised
   * from the reply anyway; set this for documentation and so a reply without a list is accepted.
   */
  readonly list?: boolean;
}

/** The answer to one action. For lists, `events` holds the items and `complete` the final event. */
export interface AmiResponse {
  readonly action: string;
  readonly actionId: string;
  /** `Success`, `Error`, `Goodbye`, ... as sent. */
  readonly response: string;
  /** The raw `Message:` value, if any. Some actions end it with a stray LF; trim before comparing. */
  readonly message: string | undefined;
  readonly reply: AmiMessage;
  readonly events: readonly AmiEvent[];
  readonly complete: AmiEvent | undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The action got no complete answer in time. It may still run on the server. */
export class AmiTimeoutError extends VmbridgeError {
  readonly action: string;
  readonly actionId: string;
  readonly timeoutMs: number;
  constructor(action: string, actionId: string, timeoutMs: number) {
    super('AMI_TIMEOUT', `AMI ${action} (ActionID ${actionId}) got no complete answer within ${timeoutMs} ms`);
    this.action = action;
    this.actionId = actionId;
    this.timeoutMs = timeoutMs;
  }
}

/** Not connected, or the connection ended before the answer. An action in flight may have run. */
export class AmiConnectionError extends VmbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMI_CONNECTION', message, options);
  }
}

/** Asterisk refused the login (`Authentication failed`). The username is named, the secret never. */
export class AmiAuthError extends VmbridgeError {
  readonly username: string;
  constructor(username: string, reason: string) {
    super('AMI_AUTH', `AMI login as ${JSON.stringify(username)} refused: ${reason}`);
    this.username = username;
  }
}

/** Asterisk answered `Response: Error` (or, through the helpers, a failure dressed as Success). */
export class AmiActionError extends VmbridgeError {
  readonly action: string;
  readonly response: AmiResponse;
  constructor(action: string, response: AmiResponse, why?: string, code = 'AMI_ACTION') {
    super(code, `AMI ${action} failed: ${why ?? (response.message?.trim() || response.response)}`);
    this.action = action;
    this.response = response;
  }
}

// ---------------------------------------------------------------------------------------------

export interface AmiClientEvents {
  /** Logged in (the first time and after every reconnect). */
  connected: [info: { readonly version: string }];
  /** A logged-in session ended without close(). Actions in flight have failed. */
  disconnected: [reason: Error];
  /** A reconnect attempt is scheduled. */
  reconnecting: [info: { readonly attempt: number; readonly delayMs: number; readonly lastError: Error }];
  /** An unsolicited event (never a list item of an action of this client). */
  event: [event: AmiEvent];
}

interface Pending {
  readonly action: string;
  readonly actionId: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (r: AmiResponse) => void;
  readonly reject: (e: Error) => void;
  reply: AmiMessage | undefined;
  readonly events: AmiEvent[];
}

/** One TCP connection and what belongs only to it. */
interface Session {
  readonly socket: Socket;
  readonly pending: Map<string, Pending>;
  /** ActionIDs that timed out: a late answer, and the items of a late list, are dropped. */
  readonly abandoned: Set<string>;
  version: string | undefined;
  ended: boolean;
}

const DEFAULT_ACTION_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_KEEPALIVE_MS = 30_000;
const PREFIX = /^[A-Za-z0-9_.]{1,32}$/;
/** Timed-out ActionIDs remembered per connection, so that their late list items are dropped. */
const MAX_ABANDONED = 1_000;

type State = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

export class AmiClient extends EventEmitter<AmiClientEvents> {
  private readonly opts: AmiClientOptions;
  private readonly idPrefix: string;
  private counter = 0;
  private state: State = 'idle';
  private session: Session | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private attempt = 0;

  constructor(opts: AmiClientOptions) {
    super();
    if (opts.actionIdPrefix !== undefined && !PREFIX.test(opts.actionIdPrefix)) {
      throw new AmiUnsafeValueError('actionIdPrefix', 'use 1 to 32 letters, digits, "_" or "."');
    }
    // Checked now so that a bad secret is reported at configuration time, not at every reconnect.
    assertHeaderValue('Username', opts.username);
    assertHeaderValue('Secret', opts.secret);
    this.opts = opts;
    this.idPrefix = `${opts.actionIdPrefix ?? 'vmb'}_${randomBytes(6).toString('hex')}`;
  }

  /** True while logged in. */
  get connected(): boolean {
    return this.state === 'ready';
  }

  /** The AMI version from the banner of the current connection (e.g. `11.0.0` for Asterisk 22). */
  get version(): string | undefined {
    return this.session?.version;
  }

  /**
   * Connects and logs in once. Rejects with AmiAuthError, AmiTimeoutError or AmiConnectionError
   * if that fails. After it has succeeded, the client keeps itself connected until close().
   */
  async connect(): Promise<void> {
    if (this.state === 'closed') throw new AmiConnectionError('AMI client was closed');
    if (this.state !== 'idle') throw new AmiConnectionError(`AMI client is already ${this.state}`);
    this.state = 'connecting';
    try {
      await this.openSession();
    } catch (err) {
      if (this.state === 'connecting') this.state = 'idle';
      throw err;
    }
    if (this.state !== 'connecting') return; // closed meanwhile
    this.becomeReady();
  }

  /** Logs off (best effort), stops reconnecting and fails whatever is still in flight. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    this.stopTimers();
    const session = this.session;
    if (!session) return;
    if (wasReady && !session.ended) {
      await this.send(session, 'Logoff', [], Math.min(this.actionTimeout(), 1_000)).catch(() => undefined);
    }
    this.endSession(session, new AmiConnectionError('AMI client closed'));
    await new Promise<void>((resolve) => {
      if (session.socket.closed) resolve();
      else session.socket.once('close', () => resolve());
    });
  }

  /**
   * Sends one action and resolves with its answer. Rejects with AmiUnsafeValueError (nothing was
   * sent), AmiConnectionError, AmiTimeoutError, or AmiActionError for `Response: Error`.
   */
  action(name: string, headers: Readonly<Record<string, string>> = {}, opts: ActionOptions = {}): Promise<AmiResponse> {
    // Encode first so that an unsafe value is refused even while disconnected.
    let wire: string;
    const actionId = this.nextActionId();
    try {
      wire = encodeAction(name, actionId, Object.entries(headers));
    } catch (err) {
      return Promise.reject(err);
    }
    const session = this.session;
    if (this.state !== 'ready' || !session || session.ended) {
      return Promise.reject(new AmiConnectionError(`AMI ${name} not sent: not connected`));
    }
    return this.dispatch(session, name, actionId, wire, opts.timeoutMs ?? this.actionTimeout());
  }

  // -------------------------------------------------------------------------------------------
  // Sessions

  private actionTimeout(): number {
    return this.opts.actionTimeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
  }

  private nextActionId(): string {
    this.counter += 1;
    return `${this.idPrefix}-${this.counter}`;
  }

  /** Opens a TCP connection, waits for the banner and logs in. Leaves `this.session` set. */
  private async openSession(): Promise<void> {
    const { host, port, tls } = this.opts;
    const socket = tls ? tlsConnect({ host, port, ...tlsConnectOptions(tls) }) : netConnect({ host, port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const session: Session = { socket, pending: new Map(), abandoned: new Set(), version: undefined, ended: false };
    this.session = session;

    const banner = new Promise<void>((resolve, reject) => {
      const where = `${this.opts.host}:${this.opts.port}`;
      const timer = setTimeout(() => fail(new AmiConnectionError(`no AMI banner from ${where} within ${this.connectTimeout()} ms`)), this.connectTimeout());
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      const decoder = new StringDecoder('utf8');
      const reader = new AmiFrameReader(
        (message) => this.onMessage(session, message),
        (version) => {
          clearTimeout(timer);
          session.version = version;
          resolve();
        },
      );
      socket.on('data', (chunk: Buffer) => {
        try {
          reader.push(decoder.write(chunk));
        } catch (err) {
          // Not AMI, or a broken peer: nothing more from this stream can be trusted.
          fail(err instanceof Error ? err : new AmiConnectionError(String(err)));
          socket.destroy();
        }
      });
      socket.on('error', (err) => {
        const refused = tls ? certificateError(err, `AMI server ${where}`, this.opts.tlsSettingsKey ?? 'asterisk.ami.tls', tls) : undefined;
        fail(refused ? new AmiConnectionError(refused.message, { cause: refused }) : new AmiConnectionError(`AMI connection to ${where}: ${err.message}`, { cause: err }));
      });
      socket.on('close', () => {
        fail(new AmiConnectionError(`AMI connection to ${where} closed`));
        this.onSocketClosed(session);
      });
    });

    try {
      await banner;
      await this.login(session);
    } catch (err) {
      this.endSession(session, err instanceof Error ? err : new AmiConnectionError(String(err)));
      throw err;
    }
  }

  private connectTimeout(): number {
    return this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  private async login(session: Session): Promise<void> {
    const events = this.opts.events ?? true;
    const eventsValue = events === true ? 'on' : events === false ? 'off' : events.join(',');
    const headers: AmiHeader[] = [
      ['Username', this.opts.username],
      ['Secret', this.opts.secret],
      ['Events', eventsValue],
    ];
    try {
      await this.send(session, 'Login', headers, this.actionTimeout());
    } catch (err) {
      if (err instanceof AmiActionError) throw new AmiAuthError(this.opts.username, err.response.message?.trim() || err.response.response);
      throw err;
    }
  }

  private send(session: Session, name: string, headers: readonly AmiHeader[], timeoutMs: number): Promise<AmiResponse> {
    const actionId = this.nextActionId();
    const wire = encodeAction(name, actionId, headers);
    return this.dispatch(session, name, actionId, wire, timeoutMs);
  }

  private dispatch(session: Session, action: string, actionId: string, wire: string, timeoutMs: number): Promise<AmiResponse> {
    return new Promise<AmiResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = session.pending.get(actionId);
        if (!p) return;
        session.pending.delete(actionId);
        // Its answer may still come, possibly a list: its items must not reach event subscribers.
        session.abandoned.add(actionId);
        if (session.abandoned.size > MAX_ABANDONED) {
          const oldest = session.abandoned.values().next().value;
          if (oldest !== undefined) session.abandoned.delete(oldest);
        }
        reject(new AmiTimeoutError(action, actionId, timeoutMs));
      }, timeoutMs);
      session.pending.set(actionId, { action, actionId, timer, resolve, reject, reply: undefined, events: [] });
      session.socket.write(wire);
    });
  }

  private onMessage(session: Session, message: AmiMessage): void {
    const id = message.actionId;
    const pending = id === undefined ? undefined : session.pending.get(id);
    if (message.response !== undefined) {
      if (!pending || pending.reply) {
        // Late (timed out) or not ours. A late list ack keeps its id abandoned until the Complete event.
        if (id !== undefined && message.get('EventList')?.toLowerCase() !== 'start') session.abandoned.delete(id);
        return;
      }
      pending.reply = message;
      if (message.response.toLowerCase() === 'error') {
        this.settle(session, pending, new AmiActionError(pending.action, toResponse(pending, undefined)));
      } else if (message.get('EventList')?.toLowerCase() !== 'start') {
        this.settle(session, pending, toResponse(pending, undefined));
      }
      return;
    }
    if (id !== undefined && session.abandoned.has(id)) {
      if (isListComplete(message)) session.abandoned.delete(id);
      return;
    }
    if (pending?.reply) {
      if (isListComplete(message)) this.settle(session, pending, toResponse(pending, message));
      else pending.events.push(message);
      return;
    }
    this.emit('event', message);
  }

  private settle(session: Session, pending: Pending, outcome: AmiResponse | Error): void {
    clearTimeout(pending.timer);
    session.pending.delete(pending.actionId);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /** Fails everything in flight and drops the socket. Safe to call more than once. */
  private endSession(session: Session, reason: Error): void {
    if (!session.ended) {
      session.ended = true;
      for (const p of session.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new AmiConnectionError(`AMI ${p.action} (ActionID ${p.actionId}) has no answer: ${reason.message}`, { cause: reason }));
      }
      session.pending.clear();
      session.abandoned.clear();
    }
    session.socket.destroy();
  }

  private onSocketClosed(session: Session): void {
    const reason = new AmiConnectionError(`AMI connection to ${this.opts.host}:${this.opts.port} lost`);
    this.endSession(session, reason);
    if (session !== this.session || this.state !== 'ready') return;
    this.state = 'down';
    this.stopKeepalive();
    this.emit('disconnected', reason);
    this.scheduleReconnect(reason);
  }

  private becomeReady(): void {
    if (this.session?.ended) {
      // Dropped between the login reply and now: treat it like any other drop.
      const reason = new AmiConnectionError(`AMI connection to ${this.opts.host}:${this.opts.port} lost right after login`);
      this.state = 'down';
      this.emit('disconnected', reason);
      this.scheduleReconnect(reason);
      return;
    }
    this.state = 'ready';
    this.attempt = 0;
    this.startKeepalive();
    this.emit('connected', { version: this.session?.version ?? '' });
  }

  // -------------------------------------------------------------------------------------------
  // Reconnect and keepalive

  private scheduleReconnect(lastError: Error): void {
    if (this.opts.reconnect === false || this.state === 'closed') return;
    this.attempt += 1;
    const initial = this.opts.reconnect?.initialDelayMs ?? 500;
    const max = this.opts.reconnect?.maxDelayMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.attempt - 1, 30));
    // Half fixed, half random: many vmbridge workers must not reconnect to one Asterisk in lockstep.
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.emit('reconnecting', { attempt: this.attempt, delayMs, lastError });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== 'down') return;
      this.openSession().then(
        () => {
          if (this.state === 'down') this.becomeReady();
        },
        (err: unknown) => {
          if (this.state === 'down') this.scheduleReconnect(err instanceof Error ? err : new Error(String(err)));
        },
      );
    }, delayMs);
  }

  private startKeepalive(): void {
    const every = this.opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    if (every <= 0) return;
    this.keepaliveTimer = setInterval(() => {
      const session = this.session;
      if (this.state !== 'ready' || !session) return;
      this.send(session, 'Ping', [], this.actionTimeout()).catch((err: unknown) => {
        // No Pong in time: the connection is half-open or Asterisk is stuck. Start over.
        if (err instanceof AmiTimeoutError && session === this.session) session.socket.destroy();
      });
    }, every);
    this.keepaliveTimer.unref();
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  private stopTimers(): void {
    this.stopKeepalive();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }
}

function isListComplete(message: AmiMessage): boolean {
  return message.get('EventList')?.toLowerCase() === 'complete';
}

function toResponse(pending: Pending, complete: AmiMessage | undefined): AmiResponse {
  const reply = pending.reply ?? new AmiMessage([]);
  return {
    action: pending.action,
    actionId: pending.actionId,
    response: reply.response ?? '',
    message: reply.get('Message'),
    reply,
    events: pending.events,
    complete,
  };
}
