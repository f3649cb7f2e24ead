/**
 * One sender per configured MWI target: how counts reach it. Every name and count is checked
 * before anything is sent (the AMI helpers and the SIP sender refuse CR, LF, `,` and anything
 * else outside the safe set), so a hostile mailbox name cannot add a header or an action. SMDI
 * sends only station numbers from smdi.conf, digits checked, never a mailbox name.
 */
import type { AmiMwiTarget, MwiTarget, SipMwiTarget } from '../config/schema.js';
import type { Logger } from '../log.js';
import { assertSafeName } from '../spool/names.js';
import type { MailboxRef } from '../spool/types.js';
import { assertMailboxRef, mailboxStateChange, mwiUpdate, voicemailRefresh } from './ami-actions.js';
import { AmiClient } from './ami-client.js';
import type { MwiCounts } from './counts.js';
import { sendSipNotify } from './sip-notify.js';
import { SmdiSender } from './smdi-sender.js';

export interface MwiSender {
  readonly name: string;
  readonly kind: MwiTarget['kind'];
  /** Delivers `counts` for `ref`; rejects when the target did not confirm it. */
  publish(ref: MailboxRef, counts: MwiCounts): Promise<void>;
  /**
   * A session-keeping sender's state (AMI): connected, disconnected (reconnecting), or not
   * started (it connects at the first publication). Absent: a sender without a session (SIP).
   */
  connection?(): SenderConnection;
  close(): Promise<void>;
}

export type SenderConnection = 'connected' | 'disconnected' | 'not-started';

/** What a target's worker knows of it, for /readyz. */
export interface MwiTargetHealth {
  readonly name: string;
  readonly kind: MwiTarget['kind'];
  /** The AMI session's state; absent for a target without a session (SIP NOTIFY). */
  readonly connection?: SenderConnection;
  /** The last send: when (ms since the epoch), whether it was confirmed, and why not. */
  readonly last?: { readonly at: number; readonly ok: boolean; readonly error?: string };
}

export interface SenderOptions {
  readonly log: Logger;
  /** Longest wait between AMI reconnect attempts; keeps a returning server from waiting long. */
  readonly reconnectMaxMs: number;
}

export function createSender(target: MwiTarget, opts: SenderOptions): MwiSender {
  if (target.kind === 'smdi') return new SmdiSender(target, { log: opts.log });
  return target.kind === 'sip-notify' ? new SipSender(target) : new AmiSender(target, opts);
}

/**
 * One AmiClient per AMI target. It connects on first use; once it has logged in it keeps itself
 * connected (reconnecting with backoff), and an action sent while it is down fails at once, so the
 * job is retried by its queue with fresh counts. Nothing is ever re-sent by the client itself.
 */
class AmiSender implements MwiSender {
  readonly name: string;
  readonly kind: AmiMwiTarget['kind'];
  private readonly client: AmiClient;
  private started = false;
  private connecting: Promise<void> | undefined;

  constructor(
    private readonly target: AmiMwiTarget,
    opts: SenderOptions,
  ) {
    this.name = target.name;
    this.kind = target.kind;
    if (target.secret === undefined) throw new Error(`MWI target ${target.name}: no AMI secret (the settings loader reads secretFile)`);
    this.client = new AmiClient({
      host: target.host,
      port: target.port,
      username: target.username,
      secret: target.secret,
      // A request-only session: MWI publishing needs no events.
      events: false,
      actionTimeoutMs: target.timeoutSeconds * 1000,
      connectTimeoutMs: target.timeoutSeconds * 1000,
      reconnect: { initialDelayMs: 500, maxDelayMs: Math.max(1_000, opts.reconnectMaxMs) },
      actionIdPrefix: 'vmb_mwi',
      ...(target.secure ? { tls: target.tls, tlsSettingsKey: `mwi.targets[name=${target.name}].tls` } : {}),
    });
    const log = opts.log.child({ mwiTarget: target.name });
    this.client.on('connected', (info) => log.info({ version: info.version }, 'MWI target connected'));
    this.client.on('disconnected', (err) => log.warn({ err: err.message }, 'MWI target disconnected; reconnecting'));
  }

  async publish(ref: MailboxRef, counts: MwiCounts): Promise<void> {
    // Checked before connecting: a refused name must not even open a session.
    assertMailboxRef(ref);
    const client = await this.ready();
    switch (this.target.kind) {
      case 'ami-refresh':
        // app_voicemail recounts the spool itself and publishes only if its counts changed.
        await voicemailRefresh(client, ref);
        return;
      case 'ami-mwiupdate':
        await mwiUpdate(client, ref, counts);
        return;
      case 'ami-mailboxstate':
        await mailboxStateChange(client, ref, counts, this.target.entityId);
        return;
    }
  }

  connection(): SenderConnection {
    if (!this.started) return 'not-started';
    return this.client.connected ? 'connected' : 'disconnected';
  }

  private async ready(): Promise<AmiClient> {
    if (this.started) return this.client;
    this.connecting ??= this.client.connect().then(
      () => {
        this.started = true;
        this.connecting = undefined;
      },
      (err: unknown) => {
        // Until the first login the client does not reconnect by itself: the next job tries again.
        this.connecting = undefined;
        throw err;
      },
    );
    await this.connecting;
    return this.client;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** One unsolicited NOTIFY per publication; sends still running are abandoned on close(). */
class SipSender implements MwiSender {
  readonly name: string;
  readonly kind = 'sip-notify' as const;
  private readonly abort = new AbortController();

  constructor(private readonly target: SipMwiTarget) {
    this.name = target.name;
  }

  async publish(ref: MailboxRef, counts: MwiCounts): Promise<void> {
    // The names become the URI's user part: refused here, and again by the SIP URI check.
    assertSafeName('context', ref.context);
    assertSafeName('mailbox', ref.mailbox);
    const toUri = this.target.toUri.replaceAll('{mailbox}', ref.mailbox).replaceAll('{context}', ref.context);
    await sendSipNotify(
      {
        host: this.target.host,
        port: this.target.port,
        transport: this.target.transport,
        tls: this.target.tls,
        tlsSettingsKey: `mwi.targets[name=${this.target.name}].tls`,
        toUri,
        fromUri: this.target.fromUri,
        ...(this.target.username !== undefined ? { username: this.target.username } : {}),
        ...(this.target.password !== undefined ? { password: this.target.password } : {}),
      },
      { newCount: counts.new, oldCount: counts.old, urgentNew: counts.urgent },
      { signal: this.abort.signal },
    );
  }

  async close(): Promise<void> {
    this.abort.abort();
  }
}
