/**
 * Quota and maxmsg alerts against a real Dovecot with its quota plugin, a real Redis and a real
 * SMTP server (smtp-server, in this process, on 127.0.0.1): thresholds crossed up and down send
 * exactly the expected mails and no more, and a voicemail the server refuses for quota stays in
 * the spool and reaches IMAP exactly once when room is made. An independent imapflow session
 * plays the user making room; mailparser reads what the administrators got.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startAlerts, type Alerts } from '../../src/alerts/start.js';
import { quotaScope } from '../../src/alerts/watch.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import { QUEUE_RECONCILE, type ReconcileJob } from '../../src/queue/jobs.js';
import { loadDirectory, type Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import type { ReconcileResult } from '../../src/sync/reconcile.js';
import { hearMessage, leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { MailClient } from '../support/mail-client.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../support/smtp-sink.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const ADMINS = ['pbx-admin@example.invalid', 'oncall@example.invalid'];
const FROM = 'vmbridge@example.invalid';

const box = (mailbox: string, context = 'default'): MailboxRef => ({ context, mailbox });
const mid = (ref: MailboxRef, id: string): string => identityMessageId(ref, id, DOMAIN);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('quota and maxmsg alerts on real Dovecot, Redis and SMTP', { timeout: 300_000 }, () => {
  let h: Harness;
  let service: Service;
  let sink: SmtpSink;
  const results: { ref: MailboxRef; result: ReconcileResult }[] = [];
  const full = box('1000'); // MESSAGE quota of 5
  const big = box('1001'); // STORAGE quota of 200 KiB
  const small = box('3000', 'maxctx'); // maxmsg=4
  const clients = new Map<string, MailClient>();
  const client = (ref: MailboxRef): MailClient => clients.get(`${ref.mailbox}@${ref.context}`)!;

  const mailsAbout = (ref: MailboxRef): ReceivedMail[] => sink.received.filter((r) => (r.mail.subject ?? '').includes(`${ref.mailbox}@${ref.context}`));
  const logged = (msg: string, ref?: MailboxRef): number =>
    h.logLines.filter((l) => l.includes(`"msg":"${msg}`) && (!ref || l.includes(`${ref.mailbox}@${ref.context}`))).length;
  const inbox = async (ref: MailboxRef) => client(ref).list(['INBOX']);
  const voicemailIds = async (ref: MailboxRef) => (await inbox(ref)).filter((e) => e.messageId.startsWith('<vm.'));

  /** Expunges these UIDs in one command, as a mail client emptying its selection would. */
  const expunge = async (ref: MailboxRef, uids: readonly number[]): Promise<void> => {
    const c = client(ref).client;
    const lock = await c.getMailboxLock('INBOX');
    try {
      assert.ok(await c.messageDelete(uids.join(','), { uid: true }));
    } finally {
      lock.release();
    }
  };

  before(async () => {
    sink = await startSmtpSink();
    h = await startHarness({
      boxes: [
        { mailbox: full.mailbox, fullName: 'Alice Example', quotaRule: '*:messages=5' },
        { mailbox: big.mailbox, fullName: 'Bob Example', quotaRule: '*:storage=200K' },
        { mailbox: small.mailbox, context: small.context, fullName: 'Carol Example', options: 'maxmsg=4' },
      ],
      settings: (base) => ({
        ...base,
        alerts: {
          to: ADMINS,
          from: `"vmbridge" <${FROM}>`,
          smtp: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: false },
          // The periodic sweep is called by hand below, so that every reading happens when the
          // test says and the expected mails are exact.
          quotaCheckSeconds: 0,
          quotaRetrySeconds: 1,
          quotaRetryMaxSeconds: 2,
        },
      }),
    });
    for (const ref of [full, big, small]) clients.set(`${ref.mailbox}@${ref.context}`, await h.mail(ref));
    service = await h.startService({ onReconciled: (ref, result) => results.push({ ref, result }) });
  });

  after(async () => {
    await h?.stop();
    await sink?.close();
  });

  it('MESSAGE quota: one mail at 80%, one at 100% (95 and 100 crossed together), to every administrator', async () => {
    for (let i = 0; i < 3; i++) await leaveVoicemail(h.spoolDir, full, { callerid: `"Caller ${i}" <55500${i}>`, duration: 5 });
    await waitFor('3 emails (60%)', async () => (await voicemailIds(full)).length === 3, { timeoutMs: 30_000 });

    await leaveVoicemail(h.spoolDir, full, { callerid: '"Caller 3" <555003>', duration: 5 });
    await waitFor('the 80% mail', () => mailsAbout(full).length >= 1, { timeoutMs: 30_000 });
    const first = mailsAbout(full)[0]!;
    assert.equal(first.from, FROM);
    assert.deepEqual([...first.to].sort(), [...ADMINS].sort());
    assert.equal(first.mail.subject, '[vmbridge] Mailbox of voicemail box 1000@default is 80% full (MESSAGE quota, threshold 80%)');
    const text = first.mail.text ?? '';
    for (const part of ['1000@default, owner Alice Example', 'IMAP user:      u1000', 'MESSAGE: 4 of 5 messages (80%)', 'quota root "User quota"', 'Nothing yet', 'How to make room']) {
      assert.ok(text.includes(part), `${part} in:\n${text}`);
    }
    assert.equal(first.mail.headers.get('auto-submitted'), 'auto-generated');

    await leaveVoicemail(h.spoolDir, full, { callerid: '"Caller 4" <555004>', duration: 5 });
    await waitFor('the 100% mail', () => mailsAbout(full).length >= 2, { timeoutMs: 30_000 });
    const second = mailsAbout(full)[1]!;
    assert.equal(second.mail.subject, '[vmbridge] Mailbox of voicemail box 1000@default is 100% full (MESSAGE quota, threshold 100%)');
    assert.match(second.mail.text ?? '', /MESSAGE: 5 of 5 messages \(100%\)/);
    assert.match(second.mail.text ?? '', /stays in Asterisk's spool/);
    assert.equal((await voicemailIds(full)).length, 5);
  });

  it('an APPEND refused for quota keeps the voicemail in the spool, skips the rest, and is retried until there is room; then each arrives exactly once', async () => {
    const waiting = [
      await leaveVoicemail(h.spoolDir, full, { callerid: '"Late 1" <555101>', duration: 5 }),
      await leaveVoicemail(h.spoolDir, full, { callerid: '"Late 2" <555102>', duration: 5 }),
    ];
    // Every reconcile from now on sees both waiting: the first APPEND is refused, the second not tried.
    const blocked = await waitFor('a reconcile with one refused and one skipped APPEND', () =>
      results.find(({ ref, result }) => ref.mailbox === full.mailbox && result.skipped.length === 2 &&
        result.skipped.filter((s) => s.problem.startsWith('refused for quota')).length === 1 &&
        result.skipped.filter((s) => s.problem.startsWith('not tried')).length === 1),
    { timeoutMs: 30_000 });
    assert.match(blocked.result.skipped[0]!.problem, /OVERQUOTA|quota/i);
    assert.equal(logged('mail server refused a voicemail for quota', full), 1, 'blocked once, then retried');
    // Retried without any new event: the delayed reconcile runs, is refused again, and queues the
    // next one (1 s, then 2 s here).
    await waitFor('a retry, refused again', () =>
      h.logLines.some((l) => l.includes('"reason":"quota-retry"') && l.includes('1000@default') && l.includes('"skipped":2')) &&
      logged('mailbox still over quota: voicemail stays in the spool, retried later', full) >= 1,
    { timeoutMs: 20_000 });

    const inSpool = new Set((await listFolder(h.spoolDir, full, 'INBOX')).map((m) => m.msgId));
    for (const w of waiting) assert.ok(inSpool.has(w.msgId), 'the refused voicemail stays in the spool');
    assert.equal((await voicemailIds(full)).length, 5, 'nothing more reached IMAP');
    assert.equal(mailsAbout(full).length, 2, 'already known to be full: no second 100% mail');

    // The user makes room: three voicemail emails expunged in one go (5 -> 2 of 5). With
    // sync.imapToSpool (the default) those three voicemails leave the spool too; the waiting ones stay.
    const uids = (await voicemailIds(full)).slice(0, 3).map((e) => e.uid);
    await expunge(full, uids);
    await waitFor('both waiting voicemails in IMAP', async () => {
      const ids = (await voicemailIds(full)).map((e) => e.messageId);
      return waiting.every((w) => ids.includes(mid(full, w.msgId)));
    }, { timeoutMs: 30_000 });
    const now = (await voicemailIds(full)).map((e) => e.messageId);
    for (const w of waiting) assert.equal(now.filter((m) => m === mid(full, w.msgId)).length, 1, 'exactly once');
    assert.equal(now.length, 4);
    await waitFor('the block cleared', () => logged('quota block cleared: the mailbox takes voicemail again', full) === 1);
    assert.ok(h.logLines.some((l) => l.includes('quota block cleared') && l.includes('1000@default') && l.includes('a voicemail was stored again')));
    const still = new Set((await listFolder(h.spoolDir, full, 'INBOX')).map((m) => m.msgId));
    for (const w of waiting) assert.ok(still.has(w.msgId), 'vmbridge never deletes on this path');
    // 4 of 5 is 80%: 95 and 100 re-armed, 80 still fired (75% would re-arm it): no mail.
    await sleep(1_500);
    assert.equal(mailsAbout(full).length, 2);
  });

  it('going down below threshold - margin re-arms; coming back up mails again, once', async () => {
    const uids = (await voicemailIds(full)).slice(0, 2).map((e) => e.uid);
    await expunge(full, uids); // 2 of 5
    await leaveVoicemail(h.spoolDir, full, { callerid: '"Caller 5" <555005>', duration: 5 }); // 3 of 5 = 60%
    await waitFor('80% re-armed at 60%', () => h.logLines.some((l) => l.includes('quota went down: thresholds re-armed') && l.includes('u1000') && l.includes('pct80')), { timeoutMs: 30_000 });
    assert.equal(mailsAbout(full).length, 2);
    await leaveVoicemail(h.spoolDir, full, { callerid: '"Caller 6" <555006>', duration: 5 }); // 4 of 5 = 80%
    await waitFor('the second 80% mail', () => mailsAbout(full).length >= 3, { timeoutMs: 30_000 });
    assert.match(mailsAbout(full)[2]!.mail.subject ?? '', /is 80% full \(MESSAGE quota/);
  });

  it('the periodic sweep sees mail that is not voicemail, and usage going down; a second process sends nothing twice', async () => {
    const redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    const pool = new ImapPool(h.settings.imap, h.log);
    const queue = new Queue<ReconcileJob>(QUEUE_RECONCILE, { connection: redis, prefix: h.settings.redis.prefix });
    const directory = await loadDirectory(h.settings, h.log);
    // A second vmbridge process: its own watch and alert worker, the same Redis.
    const second: Alerts = startAlerts({ settings: h.settings, redis, imap: pool, log: h.log, directory: () => directory, reconcileQueue: queue });
    try {
      const uids = (await voicemailIds(full)).slice(0, 2).map((e) => e.uid);
      await expunge(full, uids); // 2 of 5 = 40%
      await second.sweepNow();
      assert.deepEqual([...(await second.state.fired(quotaScope('u1000', 'MESSAGE')))], [], 'all re-armed at 40%');
      // The user's own mail fills the mailbox again (4 of 5): only a sweep can see that.
      for (let i = 0; i < 2; i++) {
        await client(full).client.append('INBOX', Buffer.from(`From: friend@example.invalid\r\nSubject: hello ${i}\r\nMessage-ID: <own-${i}@example.invalid>\r\n\r\nhi\r\n`));
      }
      const result = await second.sweepNow();
      assert.equal(result.failed, 0);
      assert.equal(result.read, 3, 'every account read');
      await waitFor('the 80% mail from the sweep', () => mailsAbout(full).length >= 4, { timeoutMs: 30_000 });
      await second.sweepNow();
      await sleep(1_000);
      assert.equal(mailsAbout(full).length, 4, 'the same reading from another process mails nothing');
    } finally {
      await second.close();
      await queue.close();
      await pool.close();
      redis.disconnect();
    }
  });

  it('STORAGE quota: a refusal while the reading says 75% still alerts at once, as full; the voicemail arrives once there is room', async () => {
    const own = Buffer.concat([
      Buffer.from('From: friend@example.invalid\r\nSubject: big attachment\r\nMessage-ID: <big@example.invalid>\r\n\r\n'),
      Buffer.from(randomBytes(110 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n')),
    ]);
    await client(big).client.append('INBOX', own); // about 150 KiB of 200
    const left = await leaveVoicemail(h.spoolDir, big, { callerid: '"Big" <555200>', duration: 60, audio: Buffer.alloc(40_000) });
    await waitFor('the refusal mail', () => mailsAbout(big).length >= 1, { timeoutMs: 30_000 });
    const mail = mailsAbout(big)[0]!;
    assert.equal(mail.mail.subject, '[vmbridge] Mailbox of voicemail box 1001@default is full: new voicemail waits in the spool (STORAGE quota)');
    const text = mail.mail.text ?? '';
    assert.match(text, /The server said: NO .*quota/i);
    assert.match(text, /STORAGE: 1\d\d(\.\d)? KiB of 200 KiB \(7\d%\)/);
    assert.match(text, /some room left, but not enough/);
    assert.ok((await listFolder(h.spoolDir, big, 'INBOX')).some((m) => m.msgId === left.msgId), 'kept in the spool');
    assert.equal((await voicemailIds(big)).length, 0);

    const ownUid = (await inbox(big)).find((e) => e.messageId === '<big@example.invalid>')!.uid;
    await expunge(big, [ownUid]);
    await waitFor('the voicemail in IMAP', async () => (await voicemailIds(big)).length === 1, { timeoutMs: 30_000 });
    await waitFor('the block cleared', () => logged('quota block cleared: the mailbox takes voicemail again', big) === 1);
    await sleep(1_500);
    const ids = (await voicemailIds(big)).map((e) => e.messageId);
    assert.deepEqual(ids, [mid(big, left.msgId)], 'exactly once');
    assert.equal(mailsAbout(big).length, 1, 'one mail for the one crossing');
  });

  it('maxmsg: INBOX 2 short of maxmsg warns that callers will be refused, once per crossing', async () => {
    await leaveVoicemail(h.spoolDir, small, { callerid: '"One" <1>', duration: 3 });
    await waitFor('1 email', async () => (await voicemailIds(small)).length === 1, { timeoutMs: 30_000 });
    await leaveVoicemail(h.spoolDir, small, { callerid: '"Two" <2>', duration: 3 });
    await waitFor('the maxmsg mail', () => mailsAbout(small).length >= 1, { timeoutMs: 30_000 });
    const mail = mailsAbout(small)[0]!;
    assert.equal(mail.mail.subject, '[vmbridge] Voicemail box 3000@maxctx: INBOX holds 2 of 4 messages, callers will be refused');
    assert.match(mail.mail.text ?? '', /owner Carol Example/);
    assert.deepEqual([...mail.to].sort(), [...ADMINS].sort());

    await leaveVoicemail(h.spoolDir, small, { callerid: '"Three" <3>', duration: 3 }); // 3: still fired
    await waitFor('3 emails', async () => (await voicemailIds(small)).length === 3, { timeoutMs: 30_000 });
    // Heard on the phone: two move to Old, INBOX holds 1 (below the re-arm point).
    for (let i = 0; i < 2; i++) await hearMessage(h.spoolDir, small, (await listFolder(h.spoolDir, small, 'INBOX'))[0]!.msgnum);
    await waitFor('maxmsg re-armed', () => logged('spool folder has room again: maxmsg warning re-armed', small) >= 1, { timeoutMs: 30_000 });
    await leaveVoicemail(h.spoolDir, small, { callerid: '"Four" <4>', duration: 3 }); // 2 again
    await waitFor('the second maxmsg mail', () => mailsAbout(small).length >= 2, { timeoutMs: 30_000 });
  });

  it('in all: exactly the expected mails and no more', async () => {
    // Let retries, sweeps and the alert worker settle; nothing else may arrive.
    await sleep(4_000);
    assert.equal(mailsAbout(full).length, 4, sink.received.map((r) => r.mail.subject).join('\n'));
    assert.equal(mailsAbout(big).length, 1);
    assert.equal(mailsAbout(small).length, 2);
    assert.equal(sink.received.length, 7);
    for (const r of sink.received) {
      assert.equal(r.from, FROM);
      assert.deepEqual([...r.to].sort(), [...ADMINS].sort());
    }
    assert.ok(service);
  });
});
