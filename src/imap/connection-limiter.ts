/**
 * How many IMAP connections vmbridge has open to its server, per user and in all, and who may open
 * the next one. Mail servers cap connections per user and client address (Dovecot:
 * mail_max_userip_connections, 10 by default) and refuse the login beyond it, so every connection
 * (the pool's command connections and the IDLE watcher's) takes a slot here before it connects and
 * gives it back only once its socket is closed: a connection being logged out still counts.
 *
 * - Per user: at most `perUser` connections of either kind. An IDLE connection never takes a
 *   user's last slot, so a command connection is always possible (it may have to wait for one that
 *   is closing) and IDLE can never starve reconciles.
 * - Per server (one IMAP server per settings file): at most `perServer` command connections and at
 *   most `perServerIdle` IDLE connections.
 * - A connection that does not fit waits in line (first come, first served among those that fit
 *   when a slot frees up); nothing fails because a bound is reached.
 */

export type ConnectionKind = 'command' | 'idle';

export interface ConnectionLimits {
  /** Command connections at most, over all users (imap.maxConnections). */
  readonly perServer: number;
  /** IDLE connections at most, over all users (imap.idle.maxAccounts). */
  readonly perServerIdle: number;
  /** Connections of both kinds at most, per user (imap.maxConnectionsPerUser). */
  readonly perUser: number;
}

/** One open (or opening) connection's place. release() is idempotent. */
export interface ConnectionSlot {
  readonly user: string;
  readonly kind: ConnectionKind;
  release(): void;
}

export interface ConnectionCounts {
  readonly command: number;
  readonly idle: number;
}

interface Waiter {
  readonly user: string;
  readonly kind: ConnectionKind;
  readonly grant: (slot: ConnectionSlot) => void;
  readonly fail: (err: Error) => void;
}

export class ConnectionLimiter {
  private readonly total = { command: 0, idle: 0 };
  private readonly users = new Map<string, { command: number; idle: number }>();
  private readonly waiters: Waiter[] = [];
  private peakUser = 0;
  private peakCommand = 0;
  private closedError: Error | undefined;

  constructor(readonly limits: ConnectionLimits) {
    if (!(limits.perServer >= 1 && limits.perUser >= 1 && limits.perServerIdle >= 0)) {
      throw new RangeError(`connection limits out of range: ${JSON.stringify(limits)}`);
    }
  }

  /** Connections open now for `user` (or, without a user, in all). */
  open(user?: string): ConnectionCounts {
    if (user === undefined) return { ...this.total };
    const u = this.users.get(user);
    return { command: u?.command ?? 0, idle: u?.idle ?? 0 };
  }

  /** The most connections one user and the most command connections in all had at once. */
  get peaks(): { readonly perUser: number; readonly command: number } {
    return { perUser: this.peakUser, command: this.peakCommand };
  }

  /** Requests waiting for a slot, by kind. */
  waiting(kind?: ConnectionKind): number {
    return kind === undefined ? this.waiters.length : this.waiters.filter((w) => w.kind === kind).length;
  }

  /**
   * Command connections waiting only because all `perServer` command slots are taken: closing
   * that many unused connections (of any user) would let them go on.
   */
  commandsBlockedByServer(): number {
    if (this.total.command < this.limits.perServer) return 0;
    return this.waiters.filter((w) => w.kind === 'command' && this.fitsUser(w.user, 'command')).length;
  }

  /**
   * A slot at once, or undefined when a bound is reached. Freed slots go to the waiters at once
   * (in release()), so whatever is free here is something no waiter could use: taking it jumps
   * no line.
   */
  tryAcquire(user: string, kind: ConnectionKind): ConnectionSlot | undefined {
    if (this.closedError) throw this.closedError;
    return this.fits(user, kind) ? this.take(user, kind) : undefined;
  }

  /** A slot, waiting in line while the bounds are reached. `signal` gives up waiting. */
  acquire(user: string, kind: ConnectionKind, signal?: AbortSignal): Promise<ConnectionSlot> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const now = this.tryAcquire(user, kind);
    if (now) return Promise.resolve(now);
    return new Promise<ConnectionSlot>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal));
        // Leaving the line may let someone behind go first.
        this.grantWaiting();
      };
      const waiter: Waiter = {
        user,
        kind,
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Rejects every waiter and every later request; open slots can still be released. */
  close(err: Error = new Error('IMAP connections are closed')): void {
    this.closedError = err;
    for (const w of this.waiters.splice(0)) w.fail(err);
  }

  private fitsUser(user: string, kind: ConnectionKind): boolean {
    const u = this.users.get(user);
    const command = u?.command ?? 0;
    const idle = u?.idle ?? 0;
    if (command + idle >= this.limits.perUser) return false;
    // IDLE leaves the user's last slot to a command connection.
    return kind === 'command' || idle + 1 <= this.limits.perUser - 1;
  }

  private fits(user: string, kind: ConnectionKind): boolean {
    if (!this.fitsUser(user, kind)) return false;
    return kind === 'command' ? this.total.command < this.limits.perServer : this.total.idle < this.limits.perServerIdle;
  }

  private take(user: string, kind: ConnectionKind): ConnectionSlot {
    const u = this.users.get(user) ?? { command: 0, idle: 0 };
    this.users.set(user, u);
    u[kind]++;
    this.total[kind]++;
    this.peakUser = Math.max(this.peakUser, u.command + u.idle);
    this.peakCommand = Math.max(this.peakCommand, this.total.command);
    let released = false;
    return {
      user,
      kind,
      release: () => {
        if (released) return;
        released = true;
        u[kind]--;
        this.total[kind]--;
        if (u.command === 0 && u.idle === 0 && this.users.get(user) === u) this.users.delete(user);
        this.grantWaiting();
      },
    };
  }

  /** Hands freed slots to the waiters that now fit, in the order they came. */
  private grantWaiting(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      if (this.fits(w.user, w.kind)) {
        this.waiters.splice(i, 1);
        w.grant(this.take(w.user, w.kind));
      } else {
        i++;
      }
    }
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('gave up waiting for an IMAP connection slot');
}
