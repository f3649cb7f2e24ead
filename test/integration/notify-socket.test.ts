/**
 * `vmbridge notify` as Asterisk runs it (a child process, both argument shapes) against the real
 * service listening on its notify socket in a temporary folder, with the spool watcher and the
 * sweep (and IMAP IDLE) off so that only the socket can trigger a reconcile. Real Dovecot and Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import { mailboxKey, type MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const a: MailboxRef = { context: 'default', mailbox: '6100' };
const b: MailboxRef = { context: 'default', mailbox: '6101' };

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function notify(socket: string, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    // VMBRIDGE_CONFIG points nowhere: the command must not need a settings file.
    const env = { ...process.env, VMBRIDGE_NOTIFY_SOCKET: socket, VMBRIDGE_CONFIG: '/nonexistent/vmbridge.yaml' };
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'notify', ...args], { cwd: ROOT, env }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function exchange(path: string, text: string): Promise<string> {
  return new Promise((resolveAnswer, reject) => {
    let got = '';
    const c = createConnection({ path }, () => c.write(text));
    c.setEncoding('utf8');
    c.on('data', (d: string) => (got += d));
    c.on('end', () => resolveAnswer(got));
    c.on('error', reject);
  });
}

describe('vmbridge notify over the service\'s socket', { timeout: 180_000 }, () => {
  let h: Harness;
  let socket: string;
  let service: Service;
  const reconciled: string[] = [];

  before(async () => {
    h = await startHarness({
      boxes: [{ mailbox: a.mailbox }, { mailbox: b.mailbox }],
      settings: (base) => {
        const spool = base.spool as { dir: string };
        socket = join(dirname(spool.dir), 'notify.sock');
        // IDLE off too: it would hear vmbridge's own APPEND and reconcile that mailbox once more.
        return { ...base, spool: { ...spool, watch: false, sweepSeconds: 0 }, imap: { ...(base.imap as object), idle: { maxAccounts: 0 } }, notify: { socket } };
      },
    });
    service = await h.startService({ onReconciled: (ref) => void reconciled.push(mailboxKey(ref)) });
    // The import at start reconciles each mailbox once; after that only notify can.
    await waitFor('the start reconciles', () => reconciled.length >= 2);
  });
  after(async () => {
    await h?.stop();
  });

  it('listens on notify.socket, mode 0660', async () => {
    const st = await lstat(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.ok(h.logLines.some((l) => l.includes('externnotify socket listening') && l.includes(socket)));
  });

  it('reconciles exactly the mailbox named, in both of Asterisk\'s argument shapes', async () => {
    const mcA = await h.mail(a);
    const mcB = await h.mail(b);
    const leftA = await leaveVoicemail(h.spoolDir, a, { callerid: '"First" <1>', duration: 2 });
    const leftB = await leaveVoicemail(h.spoolDir, b, { callerid: '"Second" <2>', duration: 2 });
    const mark = reconciled.length;

    // After a message is left: `<context> <mailbox> <new> <old> <urgent>`.
    const first = await notify(socket, 'default', '6100', '1', '0', '0');
    assert.equal(first.code, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /not reached|refused/);
    await waitFor('the email of 6100', async () => (await mcA.list(['INBOX'])).some((e) => e.messageId === identityMessageId(a, leftA.msgId, 'vmbridge.test')));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(reconciled.slice(mark), ['6100@default'], 'only 6100 was reconciled');
    assert.equal((await mcB.list(['INBOX'])).length, 0, '6101 was not told, so not imported');

    // After a poll or VoicemailRefresh: `"" <mailbox>@<context> <new> <old> <urgent>`.
    const second = await notify(socket, '', '6101@default', '1', '0', '0');
    assert.equal(second.code, 0, second.stderr);
    await waitFor('the email of 6101', async () => (await mcB.list(['INBOX'])).some((e) => e.messageId === identityMessageId(b, leftB.msgId, 'vmbridge.test')));
    assert.deepEqual(reconciled.slice(mark), ['6100@default', '6101@default']);
  });

  it('answers a mailbox it does not have, queues nothing and says so', async () => {
    const mark = reconciled.length;
    const r = await notify(socket, 'default', '6199', '1', '0', '0');
    assert.equal(r.code, 0);
    assert.match(r.stderr, /the running vmbridge has no mailbox 6199@default/);
    await new Promise((res) => setTimeout(res, 500));
    assert.deepEqual(reconciled.slice(mark), []);
  });

  it('refuses a bad mailbox name, in the command and in the service', async () => {
    const mark = reconciled.length;
    const r = await notify(socket, 'default', '../etc', '1', '0', '0');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mailbox "\.\.\/etc" is not a safe spool name/);
    // A client that skips the command's own check meets the same rule in the service.
    assert.equal(await exchange(socket, 'notify default ..\n'), 'error unsafe mailbox name\n');
    assert.equal(await exchange(socket, 'notify ../etc 6100\n'), 'error unsafe context name\n');
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(reconciled.slice(mark), []);
  });

  it('with no service, exits 0 and says so on standard error; the next start imports the voicemail', async () => {
    await service.close();
    await assert.rejects(lstat(socket), { code: 'ENOENT' }, 'the socket goes with the service');
    const mc = await h.mail(a);
    const left = await leaveVoicemail(h.spoolDir, a, { callerid: '"While down" <3>', duration: 2 });
    const r = await notify(socket, 'default', '6100', '2', '0', '0');
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^vmbridge notify: vmbridge not reached at .*notify\.sock \(no such socket.*the spool watcher and the sweep will pick up 6100@default\n$/);
    service = await h.startService();
    await waitFor('the email left while vmbridge was down', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(a, left.msgId, 'vmbridge.test')));
  });
});
