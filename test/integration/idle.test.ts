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
 *
 * And the IDLE watcher's logins, against a Dovecot of their own (counted at a relay as well): it
 * shares the command pool's refused-login back-off (a wrong password or an expired OAuth2 token
 * held off by either holds off both, new credentials end it for both, each refusal logged once),
 * and it refuses an authzid master login that fell back to a plain LOGIN, as the pool does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { ImapAuthBackoffError, ImapError } from '../../src/errors.js';
import { IdleWatcher } from '../../src/imap/idle-watcher.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startHarness, userOf, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import type { MailClient, SeenEmail } from '../support/mail-client.js';
import { startIntrospectionServer, type IntrospectionServer } from '../support/oauth-introspection.js';
import { requireExecutable } from '../support/processes.js';
import { sessionOf, sessions, type TapSession } from '../support/tap-sessions.js';
import { waitFor } from '../support/wait.js';
import { memoryLogger } from '../support/memory-log.js';

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
        // Watched by name for the whole file (the choice by need, made again every minute, would
        // move connections between accounts mid-test; it has its own test, idle-choice.test.ts).
        return { ...base, imap: { ...imap, port: tap.port, idle: { maxAccounts: 2, rechooseSeconds: 86_400 } } };
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

  it("vmbridge's own APPENDs heard by IDLE queue no reconcile at once, only the one look that follows them; a mail client's new message does", async () => {
    const ref = watchedA;
    const mc = await h.mail(ref);
    await sleep(1_500);
    const before = reconciled.get(ref.mailbox) ?? 0;
    for (let i = 0; i < 5; i++) {
      const left = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Echo ${i}" <555${i}>`, duration: 2 });
      await waitFor(`email ${i}`, async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, left.msgId, DOMAIN)) || undefined, WAIT);
      // Shorter than the follow-up look's wait, longer than Dovecot's delay in telling the IDLE
      // session of the APPEND (about half a second): echoes arrive while the burst goes on.
      await sleep(600);
    }
    // Past the last look (FOLLOW_UP_MS after the last APPEND).
    await sleep(2_500);
    const own = (reconciled.get(ref.mailbox) ?? 0) - before;
    // One reconcile per voicemail, from the spool watcher, and the look after the burst (two if the
    // burst is longer than its 10 s bound); each echo at once would add one: 10 in all.
    assert.ok(own >= 6 && own <= 7, `${own} reconciles for 5 new voicemails`);

    // The user's own new mail in the same folder is a change vmbridge did not make: it is heard.
    const heard = reconciled.get(ref.mailbox) ?? 0;
    await mc.client.append('INBOX', Buffer.from('From: a@example.invalid\r\nSubject: own mail\r\nMessage-ID: <own-echo@example.invalid>\r\n\r\nhello\r\n'));
    await waitFor('a reconcile after the mail client\'s APPEND', () => (reconciled.get(ref.mailbox) ?? 0) > heard || undefined, WAIT);
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
    // The connections counted below must be the watchers' alone: a reconcile still queued from the
    // test before (the spool watcher's echo of its own spool change, say) would retry through the
    // outage with connections of its own. Twice quiet, half a second apart.
    const queuesIdle = async (): Promise<boolean> => {
      for (const q of [service!.requester.queue, service!.requester.background]) {
        const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        if (Object.values(c).some((n) => n > 0)) return false;
      }
      return true;
    };
    await waitFor('no reconcile queued or running', async () => {
      if (!(await queuesIdle())) return undefined;
      await sleep(500);
      return (await queuesIdle()) || undefined;
    }, WAIT);
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


/**
 * A relay in front of `upstreamPort` that removes every AUTH= capability from what the server
 * says, as a server that offers no SASL mechanism would: imapflow then falls back to a plain LOGIN.
 * Server lines are passed on whole (a capability is never split between two reads).
 */
async function withoutSaslRelay(upstreamPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client);
    sockets.add(upstream);
    let pending = '';
    upstream.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      const end = pending.lastIndexOf('\r\n');
      if (end < 0) return;
      client.write(Buffer.from(pending.slice(0, end + 2).replace(/ AUTH=[^\s\]]+/gi, ''), 'latin1'));
      pending = pending.slice(end + 2);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', closeBoth);
      s.on('error', closeBoth);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the relay has no port');
  return {
    port: address.port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('IMAP IDLE logins: the pool\'s back-off, the pool\'s login check', { timeout: 180_000 }, () => {
  let dovecot: DovecotServer;
  let intro: IntrospectionServer;
  let tap: ImapTap;
  let dir: string;
  const MASTER = { user: 'vmbadmin', pass: 'Master-Pw-5127' };

  const imapSettings = (port: number, login: Record<string, unknown> = {}): Settings['imap'] =>
    settingsSchema.shape.imap.parse({ host: '127.0.0.1', port, secure: false, requireTls: false, login, idle: { maxAccounts: 10 } });
  /** LOGIN and AUTHENTICATE commands for `user` the relay saw (each is a login attempt). */
  const loginsOf = (user: string): TapSession[] => sessions(tap).filter((s) => s.user === user);
  /** An open IDLE session of `user`. */
  const idleOf = (user: string): TapSession | undefined => sessions(tap).find((s) => s.user === user && s.idle && s.closedAt === undefined);
  const refusedLines = (lines: readonly string[], user: string): string[] => lines.filter((l) => l.includes('imap login refused;') && l.includes(`"account":"${user}"`));

  before(async () => {
    requireExecutable('doveadm', 'dovecot-core');
    dir = await mkdtemp(join(tmpdir(), 'vmb-idle-login-'));
    intro = await startIntrospectionServer();
    dovecot = await startDovecot({
      users: [
        { user: 'ivy', pass: 'Ivy-Pw-1' },
        { user: 'jon', pass: 'Jon-Pw-2' },
        { user: 'kim', pass: `unused-${randomBytes(12).toString('hex')}` },
        { user: 'lea', pass: 'Lea-Pw-4' },
        // The admin has a mailbox of its own, as a Cyrus admin may: a plain LOGIN opens it.
        MASTER,
      ],
      masterUser: MASTER,
      oauth2: { introspectionUrl: intro.urlFor('post') },
    });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
    await intro?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a wrong password with IDLE on: over 10 s the watcher and the pool together make only the logins the shared back-off allows, each refusal logged once', async (t) => {
    const WINDOW_MS = 10_000;
    // The pool's back-off shortened through its constructor (there is no setting for it): 2 s,
    // doubling. Refusals at 0 s, >= 2 s, >= 6 s; the next no earlier than 14 s. The watcher keeps
    // its own reconnect schedule (1 s doubling), which alone would log in about 5 times in 10 s.
    const { log, lines } = memoryLogger();
    const server = imapSettings(tap.port);
    const pool = new ImapPool(server, log, { initialMs: 2_000, maxMs: 60_000 });
    const idle = new IdleWatcher({ server, maxAccounts: 10, log, onChange: () => undefined, limiter: pool.limiter, logins: pool.logins });
    const account = { user: 'ivy', password: 'Wrong-Pw-9' };
    const outcomes = { backoff: 0, refused: 0, other: [] as string[] };
    try {
      const started = Date.now();
      idle.update([account]);
      // Reconciles of the account's mailboxes, retried as fast as a busy queue would.
      while (Date.now() - started < WINDOW_MS) {
        await pool.withClient(account, async () => undefined).then(
          () => outcomes.other.push('logged in'),
          (err: unknown) => {
            if (err instanceof ImapAuthBackoffError) outcomes.backoff++;
            else if (err instanceof ImapError && /authentication failed/.test(err.message)) outcomes.refused++;
            else outcomes.other.push(String(err));
          },
        );
        await sleep(100);
      }
      const attempts = loginsOf('ivy');
      t.diagnostic(`in ${WINDOW_MS} ms: ${attempts.length} logins at the server (${attempts.filter((s) => s.idle).length} went on to IDLE), pool: ${outcomes.refused} refused, ${outcomes.backoff} turned away by the back-off; logins at ${attempts.map((s) => `${s.loginAt - started} ms`).join(', ')}`);
      assert.deepEqual(outcomes.other, [], 'every pool request failed for the password');
      assert.ok(attempts.length >= 2, `tried again once a back-off was over (${attempts.length} logins)`);
      assert.ok(attempts.length <= 3, `no more logins than the back-off allows in ${WINDOW_MS} ms: 3, not ${attempts.length}`);
      assert.ok(outcomes.backoff >= 20, `the pool was turned away without a login (${outcomes.backoff} times)`);
      const refused = refusedLines(lines, 'ivy').map((l) => (JSON.parse(l) as { failures: number }).failures);
      assert.deepEqual(refused, attempts.map((_, i) => i + 1), 'each refusal logged once, the wait doubling');
      assert.equal(lines.filter((l) => l.includes('IDLE connection failed')).length, 0, 'the watcher logs no refusal of its own');
      assert.equal(lines.join('\n').includes('Wrong-Pw-9'), false, 'no password in the log');
    } finally {
      await idle.close();
      await pool.close();
    }
  });

  it('a login refused for the watcher holds the pool off too; the corrected password (voicemail.conf reloaded) ends it for both at once', async () => {
    const { log, lines } = memoryLogger();
    const server = imapSettings(tap.port);
    // The service's back-off: 60 s after the first refusal.
    const pool = new ImapPool(server, log);
    const idle = new IdleWatcher({ server, maxAccounts: 10, log, onChange: () => undefined, limiter: pool.limiter, logins: pool.logins });
    try {
      idle.update([{ user: 'jon', password: 'Wrong-Pw-9' }]);
      await waitFor('the watcher\'s refused login', () => refusedLines(lines, 'jon').length === 1, { timeoutMs: 20_000 });
      // The watcher alone would retry after 0.5-1 s, 1-2 s...: 3 s of quiet is the back-off.
      await sleep(3_000);
      assert.equal(loginsOf('jon').length, 1, 'the watcher did not log in again');
      await assert.rejects(pool.withClient({ user: 'jon', password: 'Wrong-Pw-9' }, async () => undefined), (err: unknown) => {
        assert.ok(err instanceof ImapAuthBackoffError, String(err));
        assert.ok(err.retryAt.getTime() - Date.now() > 50_000, 'the 60 s back-off the watcher\'s refusal started');
        assert.match(err.message, /^jon: authentication failed \(cannot log in to 127\.0\.0\.1:\d+: authentication failed .*\); not tried again before/);
        return true;
      });
      assert.equal(loginsOf('jon').length, 1, 'the pool did not log in either');

      // voicemail.conf corrected and reloaded: the watcher gets the new password first.
      idle.update([{ user: 'jon', password: 'Jon-Pw-2' }]);
      await waitFor('an IDLE session of jon', () => idleOf('jon'), { timeoutMs: 20_000 });
      assert.equal(await pool.withClient({ user: 'jon', password: 'Jon-Pw-2' }, async (c) => Boolean(c.authenticated)), true);
      assert.equal(loginsOf('jon').length, 3, 'the refused login, then one each with the new password');
      assert.equal(lines.filter((l) => l.includes('password or token has changed')).length, 1);
      assert.equal(refusedLines(lines, 'jon').length, 1);
    } finally {
      await idle.close();
      await pool.close();
    }
  });

  it('an expired OAuth2 token refused for the pool holds the watcher off; a rewritten token file ends it for both', async () => {
    const token = (user: string): string => {
      const value = `at-${randomBytes(24).toString('base64url')}`;
      intro.addToken(value, user, { ttlMs: 3_600_000 });
      return value;
    };
    const expired = token('kim');
    intro.expire(expired);
    await writeFile(join(dir, 'kim.token'), `${expired}\n`, { mode: 0o600 });
    const { log, lines } = memoryLogger();
    const server = imapSettings(tap.port, { mode: 'oauth2', tokenFile: join(dir, '{user}.token') });
    const pool = new ImapPool(server, log);
    const idle = new IdleWatcher({ server, maxAccounts: 10, log, onChange: () => undefined, limiter: pool.limiter, logins: pool.logins });
    try {
      await assert.rejects(pool.withClient({ user: 'kim' }, async () => undefined), /^ImapError: kim: cannot log in .*the OAuth2 token was refused/);
      idle.update([{ user: 'kim' }]);
      await sleep(3_000);
      assert.equal(loginsOf('kim').length, 1, 'the watcher waits out the pool\'s back-off');
      // The token refresher writes a new token; nothing else happens.
      const fresh = token('kim');
      await writeFile(join(dir, 'kim.token'), `${fresh}\n`);
      await waitFor('an IDLE session of kim with the new token', () => idleOf('kim'), { timeoutMs: 20_000 });
      assert.equal(await pool.withClient({ user: 'kim' }, async (c) => Boolean(c.authenticated)), true);
      assert.deepEqual(loginsOf('kim').map((s) => s.secret === fresh), [false, true, true], 'the expired token once, then the new one for each');
      assert.equal(refusedLines(lines, 'kim').length, 1);
      assert.equal(lines.some((l) => l.includes(expired.slice(3)) || l.includes(fresh.slice(3))), false, 'no token in the log');
    } finally {
      await idle.close();
      await pool.close();
    }
  });

  it('an authzid master login: IDLE as the user with SASL PLAIN; a server without it (plain LOGIN, the admin\'s own mailbox) is logged out before anything is read', async () => {
    const { log, lines } = memoryLogger();
    const login = { mode: 'master', masterStyle: 'authzid', masterUser: MASTER.user, masterPassword: MASTER.pass };
    // With SASL PLAIN offered: the watcher works, as lea, through the admin's credentials.
    const direct = imapSettings(tap.port, login);
    const ok = new IdleWatcher({ server: direct, maxAccounts: 10, log, onChange: () => undefined });
    try {
      ok.update([{ user: 'lea' }]);
      const session = await waitFor('an IDLE session of lea', () => idleOf('lea'), { timeoutMs: 20_000 });
      assert.equal(session.mechanism, 'PLAIN');
    } finally {
      await ok.close();
    }

    // Without it imapflow falls back to LOGIN as the admin: the watcher must not watch that.
    const relay = await withoutSaslRelay(tap.port);
    const mark = tap.connections.length;
    const refused = new IdleWatcher({ server: imapSettings(relay.port, login), maxAccounts: 10, log, onChange: () => undefined });
    try {
      refused.update([{ user: 'lea' }]);
      await waitFor('the refusal logged', () => lines.some((l) => l.includes('IDLE connection failed') && l.includes('offers no SASL PLAIN')), { timeoutMs: 20_000 });
    } finally {
      await refused.close();
      await relay.close();
    }
    const tried = tap.connections.slice(mark).filter((c) => c.lines.some((l) => /^\S+ LOGIN /i.test(l.line)));
    assert.ok(tried.length >= 1, 'the fallback LOGIN the check must catch was sent');
    for (const c of tried) {
      const verbs = c.lines.map((l) => l.line.split(' ')[1]?.toUpperCase() ?? '');
      const afterLogin = verbs.slice(verbs.indexOf('LOGIN') + 1);
      assert.ok(afterLogin.includes('LOGOUT'), `logged out: ${verbs.join(' ')}`);
      for (const verb of afterLogin) assert.ok(['CAPABILITY', 'NAMESPACE', 'ID', 'ENABLE', 'COMPRESS', 'LOGOUT'].includes(verb), `only session set-up, then LOGOUT: ${verbs.join(' ')}`);
    }
    assert.ok(tap.connections.slice(mark).every((c) => !c.lines.some((l) => /^\S+ (SELECT|EXAMINE|IDLE|LIST|STATUS)\b/i.test(l.line))), 'the admin\'s own mailbox was never looked at');
    assert.equal(lines.join('\n').includes(MASTER.pass), false, 'no password in the log');
  });
});
