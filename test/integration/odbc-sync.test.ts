/**
 * A site with Asterisk's ODBC voicemail storage (voicemail.conf odbcstorage=, odbctable=): the
 * service syncs the table both ways against real PostgreSQL, Dovecot and Redis. Rows are written
 * the way app_voicemail writes them; what the user does in the mail client reaches the table as
 * SQL changes (no AMI here) that keep msgnum dense; a row whose recording is not audio is left
 * alone on both sides while the others sync. With odbc_audio_on_disk=yes the audio files in the
 * spool folder follow the rows.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { postgresTriggerSql } from '../../src/store/odbc/trigger.js';
import { AsteriskOdbc } from '../support/asterisk-odbc.js';
import { startPostgres, type DatabaseServer } from '../support/databases.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { wavOf } from '../support/store-contract.js';
import { waitFor } from '../support/wait.js';

const TABLE = 'voicemail_messages';
const WAIT = { timeoutMs: 40_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '1000' };
const mid = (id: string): string => identityMessageId(ref, id, 'vmbridge.test');

describe('ODBC voicemail storage synced both ways (PostgreSQL)', { timeout: 300_000 }, () => {
  let db: DatabaseServer;
  let h: Harness;
  let asterisk: AsteriskOdbc;
  let service: Service;
  let mail: MailClient;
  let secrets: string;

  const folderOf = (id: string): Promise<string | undefined> =>
    Promise.all(['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends'].map(async (f) => ((await asterisk.folder(ref, f)).some((r) => r.msgId === id) ? f : undefined))).then((fs) => fs.find((f) => f !== undefined));
  const emailOf = (id: string, folder = 'INBOX') => waitFor(`the email of ${id} in ${folder}`, async () => (await mail.list(VOICEMAIL_FOLDERS)).find((e) => e.messageId === mid(id) && e.folder === folder), WAIT);
  const inFolder = async (folder: string, fn: (c: MailClient['client']) => Promise<unknown>): Promise<void> => {
    const lock = await mail.client.getMailboxLock(folder);
    try {
      await fn(mail.client);
    } finally {
      lock.release();
    }
  };

  before(async () => {
    db = await startPostgres();
    secrets = await mkdtemp(join(tmpdir(), 'vmbridge-odbc-secret-'));
    const urlFile = join(secrets, 'db-url');
    await writeFile(urlFile, `${db.url}\n`, { mode: 0o600 });
    h = await startHarness({
      boxes: [{ mailbox: '1000' }],
      confExtra: `[general]\nformat=wav\nodbcstorage=asterisk\nodbctable=${TABLE}\n`,
      settings: (b) => ({ ...b, spool: { ...(b['spool'] as object), odbc: { urlFile, pollSeconds: 1 } } }),
    });
    asterisk = new AsteriskOdbc({ url: db.url, table: TABLE, spoolDir: h.spoolDir });
    await asterisk.createTable();
    await asterisk.db.query(postgresTriggerSql(TABLE));
    mail = await h.mail(ref);
    service = await h.startService();
  });
  after(async () => {
    await service?.close();
    await asterisk?.close();
    await h?.stop();
    await db?.stop();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it('a new row becomes an email; read, filed and deleted in the mail client, the table follows with dense msgnum', async () => {
    const first = await asterisk.leave(ref, { audio: wavOf('first'), callerid: '"Caller" <5550100>' });
    const second = await asterisk.leave(ref, { audio: wavOf('second') });
    const e1 = await emailOf(first.msgId);
    await emailOf(second.msgId);
    // A person takes a moment before acting on a new email (see imap-to-spool.test.ts).
    await new Promise((r) => setTimeout(r, 1_500));

    await inFolder('INBOX', (c) => c.messageFlagsAdd(String(e1.uid), ['\\Seen'], { uid: true }));
    await waitFor('the first row in Old', async () => (await folderOf(first.msgId)) === 'Old', WAIT);
    assert.deepEqual(await asterisk.folder(ref, 'INBOX'), [{ msgnum: 0, msgId: second.msgId }], 'INBOX renumbered');

    const e2 = await emailOf(second.msgId);
    await mail.client.mailboxCreate('Work').catch(() => undefined);
    await inFolder('INBOX', (c) => c.messageMove(String(e2.uid), 'Work', { uid: true }));
    await waitFor('the second row in Work', async () => (await folderOf(second.msgId)) === 'Work', WAIT);

    // Deleted in INBOX (the folder IDLE watches; a deletion in Work is heard at the sweep).
    const third = await asterisk.leave(ref, { audio: wavOf('third') });
    const e3 = await emailOf(third.msgId);
    await new Promise((r) => setTimeout(r, 1_500));
    await inFolder('INBOX', async (c) => {
      await c.messageFlagsAdd(String(e3.uid), ['\\Deleted'], { uid: true });
      await c.messageDelete(String(e3.uid), { uid: true });
    });
    await waitFor('the third row gone', async () => (await folderOf(third.msgId)) === undefined, WAIT);
    assert.deepEqual(await asterisk.folder(ref, 'INBOX'), [], 'INBOX empty');
    assert.deepEqual(await asterisk.folder(ref, 'Work'), [{ msgnum: 0, msgId: second.msgId }]);
    assert.deepEqual(await asterisk.folder(ref, 'Old'), [{ msgnum: 0, msgId: first.msgId }]);
  });

  it('listening on the phone (Asterisk moves the row to Old) marks the email read', async () => {
    const left = await asterisk.leave(ref, { audio: wavOf('heard') });
    await emailOf(left.msgId);
    await asterisk.move(ref, 'INBOX', left.msgnum, 'Old');
    await waitFor('the email marked \\Seen', async () => (await mail.list(VOICEMAIL_FOLDERS)).find((e) => e.messageId === mid(left.msgId))?.flags.has('\\Seen'), WAIT);
  });

  it('a row whose recording is not audio is named in the log and left alone; the next one is emailed', async () => {
    const bad = await asterisk.leave(ref, { audio: wavOf('x'), recording: Buffer.from('not a recording') });
    const good = await asterisk.leave(ref, { audio: wavOf('good') });
    await emailOf(good.msgId);
    await waitFor('the row named in the log', () => h.logLines.some((l) => l.includes('voicemail not turned into an email') && l.includes(`${TABLE} row`) && l.includes('not a WAV file')), WAIT);
    assert.equal((await mail.list(VOICEMAIL_FOLDERS)).some((e) => e.messageId === mid(bad.msgId)), false, 'no email for it');
    assert.equal(await folderOf(bad.msgId), 'INBOX', 'and the row is still there');
  });

  it('vmbridge doctor names the table, its mailboxes, and a row it cannot place', async () => {
    await asterisk.db.query(`INSERT INTO ${TABLE} (dir, msgnum, recording, msg_id) VALUES (?, 0, ?, ?)`, ['/srv/elsewhere/voicemail/default/1000/INBOX', wavOf('stray'), '1-00000001']);
    const config = join(h.dir, 'doctor.yaml');
    await writeFile(config, stringify(h.settings));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMBRIDGE_')));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'doctor', '--config', config], { cwd: resolve(import.meta.dirname, '../..'), env, encoding: 'utf8', timeout: 120_000 });
    const out = `${run.stdout}${run.stderr}`;
    assert.match(out, new RegExp(`OK\\s+postgres://vmbridge:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/postgres table ${TABLE}: \\d+ mailbox(es)? with voicemail`), out);
    assert.match(out, /WARN\s+voicemail_messages rows with dir="\/srv\/elsewhere\/voicemail\/default\/1000\/INBOX": dir is not under /, out);
    assert.equal(out.includes(db.password), false, 'the database password is never printed');
  });
});

describe('ODBC voicemail storage with the audio on disk (odbc_audio_on_disk=yes, PostgreSQL)', { timeout: 300_000 }, () => {
  let db: DatabaseServer;
  let h: Harness;
  let asterisk: AsteriskOdbc;
  let service: Service;
  let mail: MailClient;
  let secrets: string;
  const formats = ['wav', 'gsm'] as const;
  /** Each format's bytes, told apart by message (a GSM file is whole 33-byte frames). */
  const audioOf = (label: string) => (ext: string): Buffer => (ext === 'gsm' ? Buffer.concat([Buffer.alloc(33, 0xd5), Buffer.alloc(33, 0xd5), Buffer.from(label.padEnd(33, '.').slice(0, 33))]) : wavOf(label));

  const emailOf = (id: string, folder = 'INBOX') => waitFor(`the email of ${id} in ${folder}`, async () => (await mail.list(VOICEMAIL_FOLDERS)).find((e) => e.messageId === mid(id) && e.folder === folder), WAIT);
  /** The folder's files on disk, by name, with the message each belongs to. */
  const filesOf = async (folder: string): Promise<Record<string, string>> => {
    const dir = asterisk.localDir(ref, folder);
    const out: Record<string, string> = {};
    for (const name of (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.lock')).sort()) {
      const bytes = await readFile(join(dir, name));
      out[name] = name.endsWith('.gsm') ? bytes.subarray(66).toString().replace(/\.+$/, '') : bytes.subarray(44).toString();
    }
    return out;
  };

  before(async () => {
    db = await startPostgres();
    secrets = await mkdtemp(join(tmpdir(), 'vmbridge-odbc-secret-'));
    const urlFile = join(secrets, 'db-url');
    await writeFile(urlFile, `${db.url}\n`, { mode: 0o600 });
    h = await startHarness({
      boxes: [{ mailbox: '1000' }],
      confExtra: `[general]\nformat=${formats.join('|')}\nodbcstorage=asterisk\nodbctable=${TABLE}\nodbc_audio_on_disk=yes\n`,
      settings: (b) => ({ ...b, spool: { ...(b['spool'] as object), odbc: { urlFile, pollSeconds: 1 } } }),
    });
    asterisk = new AsteriskOdbc({ url: db.url, table: TABLE, spoolDir: h.spoolDir, audioOnDisk: { spoolDir: h.spoolDir, formats } });
    await asterisk.createTable();
    await asterisk.db.query(postgresTriggerSql(TABLE));
    mail = await h.mail(ref);
    service = await h.startService();
  });
  after(async () => {
    await service?.close();
    await asterisk?.close();
    await h?.stop();
    await db?.stop();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it('an email read moves its row and files to Old and renumbers INBOX with its files; one deleted takes its files along', async () => {
    const first = await asterisk.leave(ref, { audio: wavOf('first'), files: audioOf('first') });
    const second = await asterisk.leave(ref, { audio: wavOf('second'), files: audioOf('second') });
    const e1 = await emailOf(first.msgId);
    await emailOf(second.msgId);
    await new Promise((r) => setTimeout(r, 1_500));

    await inFolderOf(mail, 'INBOX', (c) => c.messageFlagsAdd(String(e1.uid), ['\\Seen'], { uid: true }));
    await waitFor('the first row in Old', async () => (await asterisk.folder(ref, 'Old')).some((r) => r.msgId === first.msgId), WAIT);
    assert.deepEqual(await asterisk.folder(ref, 'INBOX'), [{ msgnum: 0, msgId: second.msgId }], 'INBOX renumbered');
    assert.deepEqual(await filesOf('Old'), { 'msg0000.gsm': 'first', 'msg0000.wav': 'first' });
    assert.deepEqual(await filesOf('INBOX'), { 'msg0000.gsm': 'second', 'msg0000.wav': 'second' });

    const e2 = await emailOf(second.msgId);
    await inFolderOf(mail, 'INBOX', async (c) => {
      await c.messageFlagsAdd(String(e2.uid), ['\\Deleted'], { uid: true });
      await c.messageDelete(String(e2.uid), { uid: true });
    });
    await waitFor('the second row gone', async () => (await asterisk.folder(ref, 'INBOX')).length === 0, WAIT);
    assert.deepEqual(await filesOf('INBOX'), {}, 'its files gone with it');
    assert.deepEqual(await filesOf('Old'), { 'msg0000.gsm': 'first', 'msg0000.wav': 'first' });
  });
});

async function inFolderOf(mail: MailClient, folder: string, fn: (c: MailClient['client']) => Promise<unknown>): Promise<void> {
  const lock = await mail.client.getMailboxLock(folder);
  try {
    await fn(mail.client);
  } finally {
    lock.release();
  }
}
