/**
 * The sweep beside Dovecot's doveadm HTTP API, on a real Dovecot with the API on a loopback port:
 * before each pass one doveadm call gives every user's folder status, and a mailbox whose folders
 * and spool are as its quiet mark says is passed over without an IMAP login (counted in Dovecot's
 * own log). A read email and a new voicemail are still found by the next sweep; a wrong key or
 * an API that is down leaves the sweep to IMAP, with a warning naming the setting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { allFolderStatuses, DoveadmError } from '../../src/imap/doveadm.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import type { ReconcileResult } from '../../src/sync/reconcile.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const KEY = 'doveadm-test-key';
const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 40_000, intervalMs: 100 };
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const BOXES = [box('1000'), box('1001'), box('1002')];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the sweep beside the doveadm HTTP API', { timeout: 180_000 }, () => {
  let h: Harness;
  let redis: Redis;
  let service: Service | undefined;
  const done: { ref: MailboxRef; result: ReconcileResult }[] = [];

  const settingsWith = (doveadm: Record<string, unknown>): Settings => settingsSchema.parse({
    ...h.settings,
    // Only the sweep finds mail-client changes, and connections close soon after use, so that
    // every login vmbridge makes shows in Dovecot's log.
    imap: { ...h.settings.imap, idleCloseSeconds: 1, idle: { maxAccounts: 0 }, doveadm },
    spool: { ...h.settings.spool, watch: false, sweepSeconds: 0 },
  });
  /** vmbridge's logins to Dovecot so far, per user (the mail client below logs in as u1001 too). */
  const logins = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for (const m of (await readFile(h.dovecot.logPath, 'utf8')).matchAll(/imap-login: (?:Info: )?Login: user=<([^>]+)>/g)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
    return out;
  };
  /** The sweep's reconciles, and how many of them it queued as jobs (the rest it settled itself). */
  let lastQueued = -1;
  const settledSweep = async (): Promise<{ ref: MailboxRef; result: ReconcileResult }[]> => {
    const from = done.length;
    lastQueued = await service!.requestAll('sweep');
    await waitFor('every mailbox reconciled by the sweep', async () => (done.length - from >= BOXES.length ? true : undefined), WAIT);
    return done.slice(from);
  };
  /** Until vmbridge's own connections are logged out (imap.idleCloseSeconds 1, looked at every 5 s). */
  const quiet = async (): Promise<void> => {
    await sleep(7_000);
  };

  before(async () => {
    h = await startHarness({ boxes: BOXES.map((b) => ({ mailbox: b.mailbox })), doveadmApiKey: KEY });
    redis = new Redis(h.redisUrl);
    for (const b of BOXES) await leaveVoicemail(h.spoolDir, b);
  });

  after(async () => {
    await service?.close();
    redis?.disconnect();
    await h?.stop();
  });

  it('answers every user’s folders in one call, and refuses a wrong key naming the setting', async () => {
    const url = h.dovecot.doveadmUrl!;
    const all = await allFolderStatuses({ url, apiKey: KEY, timeoutMs: 10_000, tls: { rejectUnauthorized: true } });
    assert.ok(all instanceof Map);
    await assert.rejects(allFolderStatuses({ url, apiKey: 'wrong', timeoutMs: 10_000, tls: { rejectUnauthorized: true } }), (err: unknown) => {
      assert.ok(err instanceof DoveadmError);
      assert.match(err.message, /refused the key.*imap\.doveadm\.apiKeyFile/);
      return true;
    });
  });

  it('passes quiet mailboxes over without a login, and still finds a read email and a new voicemail', async () => {
    service = await startService(settingsWith({ url: h.dovecot.doveadmUrl, apiKey: KEY }), h.log, { onReconciled: (ref, result) => void done.push({ ref, result }) });
    await waitFor('the start-up pass', async () => (done.length >= BOXES.length ? true : undefined), WAIT);
    // The start-up pass appended the emails, so it left no quiet marks; the first sweep finds
    // every mailbox quiet and marks it (no mark yet to compare a snapshot with).
    const first = await settledSweep();
    assert.deepEqual(first.map((d) => d.result.unchanged === true), [false, false, false]);
    assert.equal(lastQueued, BOXES.length, 'without marks, each mailbox is a job');
    assert.equal(await redis.hlen(`${h.settings.redis.prefix}:quiet`), BOXES.length, 'every mailbox marked quiet');

    await quiet();
    const before1 = await logins();
    assert.ok((before1.get('u1000') ?? 0) > 0, 'Dovecot logs each login (the counts below mean something)');
    const second = await settledSweep();
    assert.deepEqual(second.map((d) => d.result.unchanged === true), [true, true, true]);
    assert.deepEqual(await logins(), before1, 'no IMAP login for a quiet sweep');
    assert.equal(lastQueued, 0, 'quiet mailboxes are settled by the pass, without a job');
    assert.ok(h.logLines.some((l) => l.includes('folder status of every user taken from the doveadm API')));

    // A mail client reads 1001's email: its folder status changes, so that mailbox gets a full look.
    const [msg] = await listFolder(h.spoolDir, box('1001'), 'INBOX');
    assert.ok(msg);
    const mc = await h.mail(box('1001'));
    const email = (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(box('1001'), msg.msgId, DOMAIN));
    assert.ok(email);
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await mc.close();
    // A voicemail in 1002's spool (no watcher): its store digest changes.
    await leaveVoicemail(h.spoolDir, box('1002'));
    await quiet();
    const before2 = await logins();
    const third = await settledSweep();
    const changed = third.filter((d) => d.result.unchanged !== true).map((d) => d.ref.mailbox).sort();
    assert.deepEqual(changed, ['1001', '1002']);
    assert.equal(lastQueued, 2, 'only the changed mailboxes were queued');
    await waitFor('the read voicemail in 1001 Old', async () => ((await listFolder(h.spoolDir, box('1001'), 'Old')).length === 1 ? true : undefined), WAIT);
    assert.equal((await h.emails(box('1002'))).length, 2, 'the new voicemail has its email');
    const after2 = await logins();
    assert.equal(after2.get('u1000') ?? 0, before2.get('u1000') ?? 0, 'the quiet mailbox had no login');
    assert.ok((after2.get('u1001') ?? 0) > (before2.get('u1001') ?? 0), 'the changed one was looked at over IMAP');
    await service.close();
    service = undefined;
  });

  it('with a wrong key, warns naming imap.doveadm and sweeps over IMAP as before', async () => {
    // Left running when the test before failed: two services would keep the process alive.
    await service?.close();
    service = await startService(settingsWith({ url: h.dovecot.doveadmUrl, apiKey: 'not-the-key' }), h.log, { onReconciled: (ref, result) => void done.push({ ref, result }) });
    const from = done.length;
    await waitFor('the start-up pass', async () => (done.length - from >= BOXES.length ? true : undefined), WAIT);
    assert.ok(h.logLines.some((l) => l.includes('doveadm API not usable for this pass') && l.includes('imap.doveadm')));
    assert.equal(await redis.exists(`${h.settings.redis.prefix}:folder-status`), 0, 'no snapshot left to trust');
    await quiet();
    const before3 = await logins();
    const sweep = await settledSweep();
    assert.deepEqual(sweep.map((d) => d.result.unchanged === true), [true, true, true], 'still quiet, by the IMAP quick look');
    assert.equal(lastQueued, BOXES.length, 'without a snapshot, each mailbox is a job');
    const after3 = await logins();
    assert.ok((after3.get('u1000') ?? 0) > (before3.get('u1000') ?? 0), 'looked at over IMAP');
  });
});
