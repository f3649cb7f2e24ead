/**
 * Every kind of MWI target at once, for end-to-end tests, and what each of them was told:
 *  - `owner` (ami-refresh): an AMI test server in the voicemail profile on the test spool, the
 *    Asterisk that owns it. It gets VoicemailRefresh and publishes MessageWaiting from its own
 *    count of the spool; a listener session collects those events.
 *  - `phone` (ami-mwiupdate): an AMI test server in the mwiext profile (res_mwi_external_ami);
 *    the MWIUpdate actions it received are what it shows.
 *  - `remote` (ami-mailboxstate): an AMI test server in the voicemail profile on a spool of its own
 *    (it does not own these mailboxes), in the opt-in newer-Asterisk mode that has
 *    MailboxStateChange (modelled from Asterisk's source, not from a capture); a listener collects
 *    the MessageWaiting events that publishing raises there.
 *  - `proxy` (sip-notify): a private Kamailio that checks Digest and logs every NOTIFY.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmiClient, type AmiEvent } from '../../src/mwi/ami-client.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer } from './ami-server.js';
import { startSipPeer, type SipPeer } from './sip-peer.js';
import { waitFor } from './wait.js';

/** What a target shows for a mailbox. `urgent` only where the target can say it (SIP). */
export interface Shown {
  readonly new: number;
  readonly old: number;
  readonly urgent?: number;
}

/** The remote Asterisk's own entity ID, and the one vmbridge's updates claim to come from. */
export const REMOTE_ENTITY_ID = '02:00:00:00:00:aa';
export const VMBRIDGE_ENTITY_ID = '02:00:00:00:00:01';

export type TargetName = 'owner' | 'phone' | 'remote' | 'proxy';
export const TARGET_NAMES: readonly TargetName[] = ['owner', 'phone', 'remote', 'proxy'];

/** How many publications each target had for a mailbox (the owner: VoicemailRefresh actions). */
export type Marks = Readonly<Record<TargetName, number>>;

const same = (s: Shown | undefined, want: Shown): boolean =>
  s !== undefined && s.new === want.new && s.old === want.old && (want.urgent === undefined || s.urgent === undefined || s.urgent === want.urgent);

const lastOf = <T>(list: readonly T[]): T | undefined => list[list.length - 1];

export class MwiTargets {
  /** MessageWaiting events the owner published, in order. */
  readonly ownerEvents: AmiEvent[] = [];
  /** MessageWaiting events the remote Asterisk published, in order. */
  readonly remoteEvents: AmiEvent[] = [];

  private constructor(
    readonly owner: AmiTestServer,
    readonly phone: AmiTestServer,
    readonly remote: AmiTestServer,
    readonly peer: SipPeer,
    private readonly remoteSpool: string,
    private readonly listeners: AmiClient[],
  ) {}

  /** Starts the four targets; `spoolDir` is the spool the owner (and vmbridge) work on. */
  static async start(spoolDir: string): Promise<MwiTargets> {
    const remoteSpool = await mkdtemp(join(tmpdir(), 'vmb-remote-spool-'));
    await mkdir(join(remoteSpool, 'voicemail'), { recursive: true });
    const owner = await startAmiServer({ spoolDir, profile: 'voicemail' });
    const phone = await startAmiServer({ spoolDir, profile: 'mwiext' });
    const remote = await startAmiServer({ spoolDir: remoteSpool, profile: 'voicemail', mailboxStateChange: { entityId: REMOTE_ENTITY_ID } });
    const peer = await startSipPeer({ username: 'vmbridge' });
    const targets = new MwiTargets(owner, phone, remote, peer, remoteSpool, []);
    await targets.listen(owner, targets.ownerEvents);
    await targets.listen(remote, targets.remoteEvents);
    return targets;
  }

  private async listen(server: AmiTestServer, into: AmiEvent[]): Promise<void> {
    const listener = new AmiClient({ host: '127.0.0.1', port: server.port, username: 'bridge', secret: 'bridge', reconnect: false });
    listener.on('event', (e) => {
      if (e.event === 'MessageWaiting') into.push(e);
    });
    this.listeners.push(listener);
    await listener.connect();
  }

  /** The `mwi.targets` settings that point vmbridge at all four. */
  settings(): Array<Record<string, unknown>> {
    const ami = (name: string, kind: string, port: number): Record<string, unknown> => ({ name, kind, host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', timeoutSeconds: 5 });
    return [
      ami('owner', 'ami-refresh', this.owner.port),
      ami('phone', 'ami-mwiupdate', this.phone.port),
      { ...ami('remote', 'ami-mailboxstate', this.remote.port), entityId: VMBRIDGE_ENTITY_ID },
      { name: 'proxy', kind: 'sip-notify', host: this.peer.host, port: this.peer.port, toUri: 'sip:{mailbox}@vmbridge.test', fromUri: 'sip:vmbridge@vmbridge.test', username: this.peer.username, password: this.peer.password },
    ];
  }

  async stop(): Promise<void> {
    for (const l of this.listeners) await l.close().catch(() => undefined);
    await this.owner.close();
    await this.phone.close();
    await this.remote.close();
    await this.peer.stop();
    await rm(this.remoteSpool, { recursive: true, force: true });
  }

  // --- what each target was told, in order ---------------------------------------------------

  refreshes(ref: MailboxRef): number {
    return this.owner.received.filter((a) => a.action === 'VoicemailRefresh' && a.get('Context') === ref.context && a.get('Mailbox') === ref.mailbox).length;
  }

  ownerShown(ref: MailboxRef): Shown[] {
    return eventsShown(this.ownerEvents, ref);
  }

  phoneShown(ref: MailboxRef): Shown[] {
    return this.phone.received
      .filter((a) => a.action === 'MWIUpdate' && a.get('Mailbox') === `${ref.mailbox}@${ref.context}`)
      .map((a) => ({ new: Number(a.get('NewMessages')), old: Number(a.get('OldMessages')) }));
  }

  /** MailboxStateChange actions the remote Asterisk received for `ref`, as sent. */
  remoteSent(ref: MailboxRef): Shown[] {
    return this.remote.received
      .filter((a) => a.action === 'MailboxStateChange' && a.get('Mailbox') === `${ref.mailbox}@${ref.context}`)
      .map((a) => ({ new: Number(a.get('NewMessages')), old: Number(a.get('OldMessages')) }));
  }

  /** What the remote Asterisk published after accepting them (its MessageWaiting events). */
  remoteShown(ref: MailboxRef): Shown[] {
    return eventsShown(this.remoteEvents, ref);
  }

  async sipShown(ref: MailboxRef): Promise<Array<Shown & { lines: string[] }>> {
    return (await this.peer.received())
      .filter((r) => r.answered === 200 && r.requestLine === `NOTIFY sip:${ref.mailbox}@vmbridge.test SIP/2.0`)
      .map((r) => {
        const lines = r.body.split('\r\n').filter(Boolean);
        const m = /^Voice-Message: (\d+)\/(\d+) \((\d+)\/\d+\)$/.exec(lines.find((l) => l.startsWith('Voice-Message:')) ?? '');
        return { new: Number(m?.[1] ?? Number.NaN), old: Number(m?.[2] ?? Number.NaN), urgent: Number(m?.[3] ?? Number.NaN), lines };
      });
  }

  /** How far each target's record for `ref` goes now; pass it to allShow to require news after it. */
  async marks(ref: MailboxRef): Promise<Marks> {
    return { owner: this.refreshes(ref), phone: this.phoneShown(ref).length, remote: this.remoteShown(ref).length, proxy: (await this.sipShown(ref)).length };
  }

  /**
   * Waits until every target shows `want` for `ref`. With `since`, each must also have been told
   * something after that mark: a new MWIUpdate, MailboxStateChange (and its MessageWaiting) and
   * NOTIFY, and a new VoicemailRefresh for the owner (which publishes only when its own count
   * changed, so its last MessageWaiting must show `want` too).
   */
  async allShow(ref: MailboxRef, want: Shown, since?: Marks, opts: { timeoutMs?: number } = {}): Promise<void> {
    const wait = { timeoutMs: opts.timeoutMs ?? 45_000, intervalMs: 100 };
    const tag = `${JSON.stringify(want)} for ${ref.mailbox}@${ref.context}`;
    const fresh = (n: number, target: TargetName): boolean => since === undefined || n > since[target];
    await waitFor(`phone MWIUpdate ${tag}`, () => {
      const seq = this.phoneShown(ref);
      return fresh(seq.length, 'phone') && same(lastOf(seq), want) ? seq : undefined;
    }, wait);
    await waitFor(`remote MailboxStateChange ${tag}`, () => {
      const seq = this.remoteShown(ref);
      return fresh(seq.length, 'remote') && same(lastOf(seq), want) && same(lastOf(this.remoteSent(ref)), want) ? seq : undefined;
    }, wait);
    await waitFor(`SIP NOTIFY ${tag}`, async () => {
      const seq = await this.sipShown(ref);
      return fresh(seq.length, 'proxy') && same(lastOf(seq), want) ? seq : undefined;
    }, wait);
    // A mailbox the owner never published counts as 0/0 there (its poll compares with zeros).
    await waitFor(`owner VoicemailRefresh and MessageWaiting ${tag}`, () => fresh(this.refreshes(ref), 'owner') && same(lastOf(this.ownerShown(ref)) ?? { new: 0, old: 0 }, want), wait);
  }
}

function eventsShown(events: readonly AmiEvent[], ref: MailboxRef): Shown[] {
  return events.filter((e) => e.get('Mailbox') === `${ref.mailbox}@${ref.context}`).map((e) => ({ new: Number(e.get('New')), old: Number(e.get('Old')) }));
}
