/**
 * The IMAP IDLE watcher on real Dovecot and Redis, seen from the wire: vmbridge reaches Dovecot
 * through a relay (test/support/imap-tap.ts) that records every connection, who logged in on it
 * and whether it went into IDLE, and that can cut connections or turn new ones away. An imapflow
 * session straight to Dovecot is the user's mail client. The spool watcher is on (so the spool's
 * own changes are seen), the sweep is off unless a test says otherwise: a mail-client change can
 * only reach the spool through IDLE.
 *
 *  - only imap.idle.maxAccounts accounts hold an IDLE connection;
 *  - an IDLE connection killed by the server (doveadm kick) comes back, and changes are heard again;
 *  - while the server cannot be reached the watcher backs off, and once it is back changes are heard;
 *  - the accounts beyond maxAccounts are found by the sweep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Settings } from '../../src/config/schema.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, userOf, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import type { MailClient, SeenEmail } from '../support/mail-client.js';
import { requireExecutable } from '../support/processes.js';
import { sessionOf, type TapSession } from '../support/tap-sessions.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
/** "Within seconds": generous for a loaded two-core machine, never a timing assertion. */
const HEARD = { timeoutMs: 15_000, intervalMs: 100 };
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('IMAP IDLE: bounded, reconnecting, backed by the sweep', { timeout: 240_000 }, () => {
  const refs = [box('7000'), box('7001'), box('7002')];
  // Accounts are watched in name order: u7000 and u7001; u7002 is beyond imap.idle.maxAccounts.
  const [watchedA, watchedB, unwatched] = refs as [MailboxRef, MailboxRef, MailboxRef];
  let tap: ImapTap;
  let dovecotPort: number;
  let h: Harness;
  let service: Service | undefined;
  /** Completed reconciles per mailbox, from the service's hook. */
  const reconciled = new Map<string, number>();
  const emails = new Map<string, { id: string; uid: number }>();

  const start = async (settings: Settings): Promise<void> => {
    service = await startService(settings, h.log, {
      onReconciled: (ref) => reconciled.set(ref.mailbox, (reconciled.get(ref.mailbox) ?? 0) + 1),
    });
  };
  const stop = async (): Promise<void> => {
    await service?.close();
    service = undefined;
  };

  /** Sessions through the relay that are open now. */
  const openSessions = (): TapSession[] => tap.connections.filter((c) => c.closedAt === undefined).map(sessionOf).filter((s): s is TapSession => s !== undefined);
  /** The IMAP users holding an open IDLE connection now, sorted. */
  const idleUsers = (): string[] => [...new Set(openSessions().filter((s) => s.idle).map((s) => s.user))].sort();
  /** An open IDLE session of `user` on a connection made after connection number `after`. */
  const newIdle = (user: string, after: number): TapSession | undefined => openSessions().find((s) => s.idle && s.user === user && s.connection.id > after);

  const whereInSpool = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of ['INBOX', 'Old', 'Urgent', 'Work'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const inSpool = (ref: MailboxRef, id: string, folder: SpoolFolder, wait = WAIT) =>
    waitFor(`${ref.mailbox}: ${id} in ${folder}`, async () => {
      const where = await whereInSpool(ref, id);
      return where.length === 1 && where[0] === folder ? where : undefined;
    }, wait);

  /** Marks the mailbox's voicemail email read (or unread) in a fresh mail-client session. */
  const setSeen = async (ref: MailboxRef, seen: boolean): Promise<void> => {
    const mc: MailClient = await h.mail(ref);
    const { uid } = emails.get(ref.mailbox)!;
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      if (seen) await mc.client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
      else await mc.client.messageFlagsRemove(String(uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
  };

  /**
   * After a reconnect the watcher asks for one reconcile (changes made while it was away were not
   * heard). Waits for that one to finish, so that what follows can only be heard by IDLE.
   */
  const reconnected = async (ref: MailboxRef, after: number, reconcilesBefore: number): Promise<void> => {
    await waitFor(`a new IDLE connection for ${userOf(ref)}`, () => newIdle(userOf(ref), after), WAIT);
    await waitFor(`the reconcile of ${ref.mailbox} asked for after the reconnect`, () => (reconciled.get(ref.mailbox) ?? 0) > reconcilesBefore, WAIT);
    await sleep(1_000);
  };

  before(async () => {
    requireExecutable('doveadm', 'dovecot-core');
    tap = await startImapTap();
    h = await startHarness({
      boxes: refs.map((r) => ({ mailbox: r.mailbox })),
      settings: (base) => {
        const imap = base.imap as { port: number };
        dovecotPort = imap.port;
        tap.upstreamPort = imap.port;
        return { ...base, imap: { ...imap, port: tap.port, idle: { maxAccounts: 2 } } };
      },
    });
    await start(h.settings);
    for (const ref of refs) {
      const left = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Caller" <${ref.mailbox}>`, duration: 2 });
      const mc = await h.mail(ref);
      const email = await waitFor(`the email of ${ref.mailbox}`, async (): Promise<SeenEmail | undefined> => (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(ref, left.msgId, DOMAIN)), WAIT);
      emails.set(ref.mailbox, { id: left.msgId, uid: email.uid });
    }
    // The IDLE sessions must have seen the emails arrive before a user acts on them.
    await sleep(1_500);
  });
  after(async () => {
    await stop().catch(() => undefined);
    await h?.stop();
    await tap?.close();
  });

  it('only imap.idle.maxAccounts accounts hold an IDLE connection', async () => {
    await waitFor('two accounts in IDLE', () => idleUsers().length === 2, WAIT);
    await sleep(2_000);
    assert.deepEqual(idleUsers(), [userOf(watchedA), userOf(watchedB)]);
    const everIdle = tap.connections.map(sessionOf).filter((s) => s?.idle).map((s) => s!.user);
    assert.ok(!everIdle.includes(userOf(unwatched)), `${userOf(unwatched)} never had an IDLE connection`);
    assert.equal(openSessions().filter((s) => s.idle).length, 2, 'one IDLE connection per watched account');
    assert.ok(h.logLines.some((l) => l.includes('more accounts than IDLE connections')), 'the bound is logged');
    // A change in a watched account is heard at once.
    await setSeen(watchedA, true);
    await inSpool(watchedA, emails.get(watchedA.mailbox)!.id, 'Old', HEARD);
  });

  it('an IDLE connection killed by the server (doveadm kick) comes back, and changes are heard again within seconds', async () => {
    const ref = watchedA;
    const mark = tap.connections.length;
    const reconciles = reconciled.get(ref.mailbox) ?? 0;
    const killed = openSessions().filter((s) => s.idle && s.user === userOf(ref));
    assert.equal(killed.length, 1);
    const { stdout } = await run('doveadm', ['-c', h.dovecot.confPath, 'kick', userOf(ref)]);
    assert.match(stdout, new RegExp(`\\b${userOf(ref)}\\b`), 'doveadm kicked the user');
    await waitFor('the kicked IDLE connection closed', () => killed[0]!.connection.closedAt !== undefined, WAIT);
    await reconnected(ref, mark, reconciles);
    // Unread again in the mail client: Old -> INBOX, heard by the new IDLE session.
    await setSeen(ref, false);
    await inSpool(ref, emails.get(ref.mailbox)!.id, 'INBOX', HEARD);
    assert.deepEqual(idleUsers(), [userOf(watchedA), userOf(watchedB)]);
  });

  it('while the server cannot be reached the watcher backs off; once it is back, changes are heard again', async () => {
    const reconciles = { a: reconciled.get(watchedA.mailbox) ?? 0, b: reconciled.get(watchedB.mailbox) ?? 0 };
    const mark = tap.connections.length;
    // Every connection is cut and new ones are turned away, as if the server were down.
    tap.upstreamPort = undefined;
    tap.dropAll();
    const OUTAGE_MS = 6_000;
    await sleep(OUTAGE_MS);
    const attempts = tap.connections.slice(mark);
    tap.upstreamPort = dovecotPort;
    // Two watchers each retry after 0.5-1 s, then 1-2 s, then 2-4 s...: 2 or 3 attempts each in
    // 6 s. Retrying every second would make 12, retrying at once hundreds.
    assert.ok(attempts.length >= 2, `the watchers kept trying while the server was away (${attempts.length} attempts)`);
    assert.ok(attempts.length <= 8, `the watchers backed off while the server was away (${attempts.length} attempts in ${OUTAGE_MS} ms)`);
    assert.ok(attempts.every((c) => c.lines.length === 0), 'nothing got through while the server was away');

    await reconnected(watchedA, mark, reconciles.a);
    await reconnected(watchedB, mark, reconciles.b);
    await setSeen(watchedB, true);
    await inSpool(watchedB, emails.get(watchedB.mailbox)!.id, 'Old', HEARD);
    assert.deepEqual(idleUsers(), [userOf(watchedA), userOf(watchedB)]);
  });

  it('an account beyond imap.idle.maxAccounts is found by the sweep', async () => {
    const ref = unwatched;
    const id = emails.get(ref.mailbox)!.id;
    await stop();
    await start({ ...h.settings, spool: { ...h.settings.spool, sweepSeconds: 2 } });
    await waitFor('two accounts in IDLE again', () => idleUsers().length === 2, WAIT);
    // The start-up reconcile of every mailbox is done before the change is made.
    const started = reconciled.get(ref.mailbox) ?? 0;
    await waitFor(`the start-up reconcile of ${ref.mailbox}`, () => (reconciled.get(ref.mailbox) ?? 0) > started, WAIT);
    assert.deepEqual(await whereInSpool(ref, id), ['INBOX']);
    await setSeen(ref, true);
    await inSpool(ref, id, 'Old');
    assert.deepEqual(idleUsers(), [userOf(watchedA), userOf(watchedB)], `still no IDLE connection for ${userOf(ref)}`);
  });
});
