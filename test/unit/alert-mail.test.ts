/**
 * The administrator mails (what they say), the recognition of a refused APPEND across servers'
 * wordings, and the alerts settings.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeAlertMail, formatBytes, formatPercent, mailConfigured, summaryMail } from '../../src/alerts/admin-mail.js';
import { loadSettings } from '../../src/config/load-settings.js';
import { settingsSchema } from '../../src/config/schema.js';
import { isOverQuotaError, refusalText } from '../../src/imap/quota.js';
import { alertJobSchema, type MaxmsgAlert, type QuotaAlert } from '../../src/queue/alert-queue.js';

const alerts = settingsSchema.parse({ imap: { host: 'h' } }).alerts;
const who = { context: 'default', mailbox: '1000', ownerName: 'Alice Example', ownerEmail: 'alice@example.invalid' };

describe('alert mail text', () => {
  const base: QuotaAlert = {
    kind: 'quota',
    imapUser: 'alice',
    boxes: [who],
    resource: 'MESSAGE',
    threshold: 80,
    readings: [
      { root: 'User quota', resource: 'MESSAGE', usage: 4, limit: 5, unit: 'messages' },
      { root: 'User quota', resource: 'STORAGE', usage: 52_000, limit: 100 * 1024 * 1024, unit: 'bytes' },
    ],
    at: '2026-11-20T10:00:00.000Z',
  };

  it('says who, how full, which limit, what happens next and how to make room (below 100%)', () => {
    const mail = composeAlertMail(base, alerts);
    assert.equal(mail.subject, '[vmbridge] Mailbox of voicemail box 1000@default is 80% full (MESSAGE quota, threshold 80%)');
    for (const part of [
      '1000@default, owner Alice Example <alice@example.invalid>',
      'IMAP user:      alice',
      'MESSAGE: 4 of 5 messages (80%), quota root "User quota"   <- this alert',
      'STORAGE: 50.8 KiB of 100 MiB (0%)',
      'Nothing yet',
      'one more mail at each of 95%, 100%',
      'not repeated until usage has fallen below 75%',
      'How to make room',
      'raise the quota of IMAP user alice',
    ]) assert.ok(mail.text.includes(part), `missing ${JSON.stringify(part)} in:\n${mail.text}`);
    assert.ok(!mail.text.includes('\n\n\n'));
  });

  it('at 100% and on a refusal says that voicemail waits in the spool and is retried', () => {
    const full = composeAlertMail({ ...base, threshold: 100, readings: [{ ...base.readings[0]!, usage: 5 }] }, alerts);
    assert.match(full.subject, /is 100% full \(MESSAGE quota, threshold 100%\)/);
    assert.match(full.text, /stays in Asterisk's spool/);
    assert.match(full.text, /first after 60 s/);
    assert.match(full.text, /at most every\s+1800 s/);

    const refused = composeAlertMail({ ...base, resource: 'STORAGE', threshold: 100, refusal: 'NO [OVERQUOTA] Quota exceeded', readings: [{ root: '', resource: 'STORAGE', usage: 150 * 1024, limit: 200 * 1024, unit: 'bytes' }] }, alerts);
    assert.equal(refused.subject, '[vmbridge] Mailbox of voicemail box 1000@default is full: new voicemail waits in the spool (STORAGE quota)');
    assert.match(refused.text, /The server said: NO \[OVERQUOTA\] Quota exceeded/);
    assert.match(refused.text, /STORAGE: 150 KiB of 200 KiB \(75%\)/);
    assert.match(refused.text, /some room left, but not enough/);
  });

  it('says whether deleting an email also deletes the voicemail (sync.imapToSpool)', () => {
    assert.match(composeAlertMail(base, alerts, { imapToSpool: true }).text, /also deletes the voicemail on the phone/);
    assert.match(composeAlertMail(base, alerts, { imapToSpool: false }).text, /leaves the voicemail on the phone/);
    const job: MaxmsgAlert = { kind: 'maxmsg', box: who, folder: 'INBOX', count: 98, maxmsg: 100, at: base.at };
    assert.match(composeAlertMail(job, alerts, { imapToSpool: true }).text, /on the phone or in the mail client/);
  });

  it('names every box of a shared account', () => {
    const mail = composeAlertMail({ ...base, boxes: [who, { ...who, mailbox: '1001', ownerName: 'Bob' }] }, alerts);
    assert.match(mail.subject, /voicemail boxes 1000@default and 1 more/);
    assert.match(mail.text, /1001@default, owner Bob/);
  });

  it('maxmsg: callers will be refused', () => {
    const job: MaxmsgAlert = { kind: 'maxmsg', box: who, folder: 'INBOX', count: 98, maxmsg: 100, at: base.at };
    const mail = composeAlertMail(job, alerts);
    assert.equal(mail.subject, '[vmbridge] Voicemail box 1000@default: INBOX holds 98 of 100 messages, callers will be refused');
    assert.match(mail.text, /refuses callers/);
    assert.match(mail.text, /raise maxmsg/);
  });

  it('summary of held-back alerts', () => {
    const mail = summaryMail([{ at: base.at, subject: 'x' }, { at: base.at, subject: 'y' }], alerts);
    assert.match(mail.subject, /2 more alerts were held back \(at most 60 alert mails per hour\)/);
    assert.match(mail.text, /x\n/);
  });

  it('units a person reads', () => {
    assert.equal(formatBytes(0), '0 bytes');
    assert.equal(formatBytes(1), '1 byte');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(200 * 1024), '200 KiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5 GiB');
    assert.equal(formatPercent(4.99, 5), '99%', 'not a premature 100%');
    assert.equal(formatPercent(6, 5), '120%');
  });

  it('job payloads are validated: no header injection through names', () => {
    assert.throws(() => alertJobSchema.parse({ ...base, imapUser: 'a\r\nBcc: x@example.com' }));
    assert.throws(() => alertJobSchema.parse({ ...base, boxes: [{ ...who, mailbox: '../x' }] }));
    assert.throws(() => alertJobSchema.parse({ ...base, extra: 1 }));
    assert.equal(alertJobSchema.parse(base).kind, 'quota');
  });
});

describe('isOverQuotaError', () => {
  const no = (responseText: string, serverResponseCode?: string): Error =>
    Object.assign(new Error('Command failed'), { responseStatus: 'NO', responseText, ...(serverResponseCode ? { serverResponseCode } : {}) });

  it('knows the OVERQUOTA response code (Dovecot, Cyrus, Gmail)', () => {
    assert.equal(isOverQuotaError(no('Quota exceeded (mailbox for user is full)', 'OVERQUOTA')), true);
    assert.equal(isOverQuotaError(no('anything', 'overquota')), true);
  });

  it('knows the wordings of servers without the code', () => {
    for (const text of ['Over quota', 'Quota exceeded', 'Mailbox is full', 'mailbox full', 'User is over quota', 'Mailbox size limit exceeded', 'Storage quota exceeded', 'APPEND failed: quota reached', 'exceeded the quota']) {
      assert.equal(isOverQuotaError(no(text)), true, text);
    }
  });

  it('is not fooled by other refusals', () => {
    for (const [text, code] of [['Mailbox doesn\'t exist: Voicemail', 'TRYCREATE'], ['Message too large', 'LIMIT'], ['Internal error occurred', 'SERVERBUG'], ['Permission denied', 'NOPERM']] as const) {
      assert.equal(isOverQuotaError(no(text, code)), false, text);
    }
    assert.equal(isOverQuotaError(Object.assign(new Error('x'), { responseStatus: 'BAD', responseText: 'quota exceeded' })), false, 'BAD is a protocol error');
    assert.equal(isOverQuotaError(new Error('Connection closed')), false);
    assert.equal(isOverQuotaError(undefined), false);
  });

  it('looks through wrapping errors (cause)', () => {
    const wrapped = new Error('u1000: APPEND failed', { cause: no('Quota exceeded', 'OVERQUOTA') });
    assert.equal(isOverQuotaError(wrapped), true);
    assert.equal(refusalText(wrapped), 'NO [OVERQUOTA] Quota exceeded');
  });
});

describe('alerts settings', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-alerts-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ VMBRIDGE_IMAP_HOST: 'h', ...extra });
  const load = (e: NodeJS.ProcessEnv) => loadSettings({ env: e, defaultFile: join(dir, 'none.yaml') });

  it('are optional: no section means no mail, with the documented defaults', async () => {
    const { settings } = await load(env({}));
    assert.deepEqual(settings.alerts.to, []);
    assert.deepEqual(settings.alerts.quotaThresholds, [80, 95, 100]);
    assert.equal(settings.alerts.rearmMarginPercent, 5);
    assert.equal(settings.alerts.quotaCheckSeconds, 900);
    assert.equal(settings.alerts.maxMailsPerHour, 60);
    assert.equal(settings.alerts.maxmsgMargin, 2);
    assert.equal(mailConfigured(settings.alerts), false);
  });

  it('take lists from the environment as comma-separated text', async () => {
    const { settings } = await load(env({
      VMBRIDGE_ALERTS_TO: 'a@example.com, b@example.com',
      VMBRIDGE_ALERTS_QUOTA_THRESHOLDS: '90,100',
      VMBRIDGE_ALERTS_SMTP__HOST: 'smtp.example.com',
    }));
    assert.deepEqual(settings.alerts.to, ['a@example.com', 'b@example.com']);
    assert.deepEqual(settings.alerts.quotaThresholds, [90, 100]);
    assert.equal(settings.alerts.smtp?.port, 587);
    assert.equal(settings.alerts.smtp?.requireTLS, true);
    assert.equal(settings.alerts.smtp?.tls.rejectUnauthorized, true);
    assert.equal(mailConfigured(settings.alerts), true);
  });

  it('refuse recipients without a mail server, and a threshold out of range', async () => {
    await assert.rejects(load(env({ VMBRIDGE_ALERTS_TO: 'a@example.com' })), /alerts\.to is set but alerts\.smtp\.host is not/);
    await assert.rejects(load(env({ VMBRIDGE_ALERTS_QUOTA_THRESHOLDS: '80,120' })), /alerts\.quotaThresholds/);
  });

  it('read the SMTP password from passFile, and never echo an inline one', async () => {
    const secret = join(dir, 'smtp-pass');
    await writeFile(secret, 's3cret\n');
    await chmod(secret, 0o600);
    const { settings } = await load(env({ VMBRIDGE_ALERTS_TO: 'a@example.com', VMBRIDGE_ALERTS_SMTP__HOST: 's', VMBRIDGE_ALERTS_SMTP__AUTH__USER: 'vm', VMBRIDGE_ALERTS_SMTP__AUTH__PASS_FILE: secret }));
    assert.equal(settings.alerts.smtp?.auth?.pass, 's3cret');
    await assert.rejects(load(env({ VMBRIDGE_ALERTS_SMTP__HOST: 's', VMBRIDGE_ALERTS_SMTP__AUTH__USER: 'vm', VMBRIDGE_ALERTS_SMTP__AUTH__PASS: 'x', VMBRIDGE_ALERTS_SMTP__AUTH__PASS_FILE: secret })), /both set/);
    await assert.rejects(load(env({ VMBRIDGE_ALERTS_SMTP__HOST: 's', VMBRIDGE_ALERTS_SMTP__AUTH__USER: 'vm' })), /neither alerts\.smtp\.auth\.passFile nor alerts\.smtp\.auth\.pass/);
    await assert.rejects(load(env({ VMBRIDGE_ALERTS_SMTP__HOST: 's', VMBRIDGE_ALERTS_SMTP__PORT: '99999', VMBRIDGE_ALERTS_SMTP__AUTH__USER: 'vm', VMBRIDGE_ALERTS_SMTP__AUTH__PASS: 'hunter22' })), (err: Error) => !err.message.includes('hunter22'));
  });
});
