/**
 * Dovecot push end to end: Dovecot runs config/dovecot/vmbridge-push.lua and POSTs every mail-store
 * event to vmbridge's /dovecot-push. With IDLE and the sweep off, push is the only way vmbridge can
 * hear a mail client's change, so each change reaching the spool proves the whole path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, type LeftVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { MailClient } from '../support/mail-client.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ref: MailboxRef = { context: 'default', mailbox: '7200' };

/** `vmbridge doctor --config <file>` as an administrator runs it. */
function doctor(configPath: string): Promise<{ code: number | null; stdout: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMBRIDGE_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'doctor', '--config', configPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}
const TOKEN = 'push-token-7200';

/** Runs `fn` with `folder` selected in the mail client's session. */
async function inFolder(mc: MailClient, folder: string, fn: () => Promise<unknown>): Promise<void> {
  const lock = await mc.client.getMailboxLock(folder);
  try {
    await fn();
  } finally {
    lock.release();
  }
}

/** The spool folder a voicemail is in now (by its msg_id in the .txt files), or undefined. */
async function spoolFolderOf(h: Harness, v: LeftVoicemail): Promise<string | undefined> {
  const { readMailbox } = await import('../../src/spool/read-mailbox.js');
  const snap = await readMailbox(h.spoolDir, ref);
  return snap.messages.find((m) => m.id === v.msgId)?.folder;
}

describe('Dovecot push: a mail client change reaches the spool with no IDLE and no sweep', { timeout: 180_000 }, () => {
  let h: Harness;
  let port: number;
  let mc: MailClient;
  before(async () => {
    port = await freePort();
    h = await startHarness({
      boxes: [{ mailbox: ref.mailbox }],
      dovecotPush: { url: `http://127.0.0.1:${port}/dovecot-push`, token: TOKEN },
      settings: (b) => ({
        ...b,
        spool: { ...(b.spool as object), watch: true, sweepSeconds: 0 },
        imap: { ...(b.imap as object), idle: { maxAccounts: 0 } },
        http: { host: '127.0.0.1', port, push: { enabled: true, token: TOKEN } },
        alerts: { quotaCheckSeconds: 0 },
      }),
    });
    await h.startService();
    mc = await h.mail(ref);
  });
  after(async () => {
    await h?.stop();
  });

  const pushesQueued = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^vmbridge_push_notices_total\{outcome="queued"\} (\S+)$/m.exec(text)?.[1] ?? NaN);
  };
  const reconciledFor = (reason: string): number =>
    h.logLines.filter((l) => l.includes('"msg":"reconciled"') && l.includes(`"reason":"${reason}"`)).length;

  it('read, filed in Work and deleted in the mail client: Old, Work, gone in the spool, each by a push', async () => {
    const v = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Pushed" <555>', duration: 3 });
    const messageId = identityMessageId(ref, v.msgId, 'vmbridge.test');
    const email = await waitFor('the email', async () => (await mc.list(['INBOX'])).find((e) => e.messageId === messageId));
    // vmbridge's own APPEND is an event too; let that reconcile finish first.
    await new Promise((r) => setTimeout(r, 500));
    const movedBefore = reconciledFor('push') + reconciledFor('watcher');
    const queuedBefore = await pushesQueued();

    await inFolder(mc, 'INBOX', () => mc.client.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
    await waitFor('the voicemail in Old', async () => (await spoolFolderOf(h, v)) === 'Old', { timeoutMs: 10_000 });
    // The push asked for the reconcile. Which job moved the voicemail can vary: on a loaded
    // machine the spool watcher's reconcile for the new voicemail can still be queued when the
    // push comes; then it moves the voicemail, and the push's own run finds nothing left to do
    // (and logs no "reconciled" line).
    assert.ok((await pushesQueued()) > queuedBefore, 'the read was told by a push that queued a reconcile');
    assert.ok(reconciledFor('push') + reconciledFor('watcher') > movedBefore, 'a reconcile moved it');

    await mc.client.mailboxCreate('Work').catch(() => undefined); // a client files into a folder that exists
    await inFolder(mc, 'INBOX', () => mc.client.messageMove(String(email.uid), 'Work', { uid: true }));
    await waitFor('the voicemail in Work', async () => (await spoolFolderOf(h, v)) === 'Work', { timeoutMs: 10_000 });

    const inWork = await waitFor('the email in Work', async () => (await mc.list(['Work'])).find((e) => e.messageId === messageId));
    await inFolder(mc, 'Work', () => mc.client.messageDelete(String(inWork.uid), { uid: true }));
    await waitFor('the voicemail gone', async () => (await spoolFolderOf(h, v)) === undefined, { timeoutMs: 10_000 });
    assert.ok(!existsSync(join(h.spoolDir, 'voicemail', 'default', '7200', 'Work', 'msg0000.txt')));

    // /readyz: push is arriving from the Dovecot on loopback, with the age of its last POST.
    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { components: { name: string; kind: string; status: string; data?: { lastAt?: string } }[] };
    const push = ready.components.filter((c) => c.kind === 'dovecot-push');
    assert.deepEqual(push.map((c) => [c.name, c.status]), [['dovecot-push 127.0.0.1', 'up']], JSON.stringify(ready));
    assert.ok(Number.isFinite(Date.parse(push[0]!.data?.lastAt ?? '')), 'the last POST has a time');
  });

  it('a POST for a user without a voicemail box is answered and ignored; a wrong token is refused and logged once a minute', async () => {
    const url = `http://127.0.0.1:${port}/dovecot-push`;
    const post = (token: string, user: string) =>
      fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ user, events: [{ event: 'FlagsSet', mailbox: 'INBOX', uid: 1 }] }) });
    assert.equal((await post(TOKEN, 'stranger')).status, 204);
    for (let i = 0; i < 5; i++) assert.equal((await post('wrong-token', 'u7200')).status, 401);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /vmbridge_push_notices_total\{outcome="unknown-user"\} 1\n/);
    assert.match(metrics, /vmbridge_push_notices_total\{outcome="refused"\} 5\n/);
    assert.match(metrics, /vmbridge_push_notices_total\{outcome="queued"\} [1-9]/);
    const refusedLines = h.logLines.filter((l) => l.includes('push from Dovecot refused'));
    assert.equal(refusedLines.length, 1, refusedLines.join('\n'));
    assert.ok(!h.logLines.some((l) => l.includes('wrong-token') || l.includes(TOKEN)), 'no token in the log');
  });

  it('vmbridge doctor: OK with the running service\'s token, FAIL with another, WARN when nothing listens', async () => {
    const write = async (name: string, http: object): Promise<string> => {
      const path = join(h.dir, `${name}.yaml`);
      await writeFile(path, stringify({ ...h.settings, http }));
      return path;
    };
    const url = `http://127.0.0.1:${port}/dovecot-push`;
    const good = await doctor(await write('doctor-good', { host: '127.0.0.1', port, push: { enabled: true, token: TOKEN } }));
    const line = (out: string): string => out.split('\n').find((l) => l.includes(url) || l.includes('/dovecot-push')) ?? '';
    assert.equal(good.code, 0, good.stdout);
    assert.match(line(good.stdout), /^\s+OK\s+.*takes POSTs.*vmbridge_push_url = http:\/\/127\.0\.0\.1:\d+\/dovecot-push/, good.stdout);
    // Whether Dovecot's POSTs arrive, per sending server (the doctor's own probe does not count).
    assert.match(good.stdout, /^\s+OK\s+POSTs arrive from 127\.0\.0\.1: the last \d+ (s|min) ago/m, good.stdout);

    const wrong = await doctor(await write('doctor-wrong', { host: '127.0.0.1', port, push: { enabled: true, token: 'not-the-token' } }));
    assert.equal(wrong.code, 1, wrong.stdout);
    assert.match(line(wrong.stdout), /^\s+FAIL\s+.*refuses this token \(401\)/, wrong.stdout);
    assert.ok(!wrong.stdout.includes('not-the-token') && !wrong.stdout.includes(TOKEN), 'no token printed');

    const idle = await doctor(await write('doctor-nobody', { host: '127.0.0.1', port: await freePort(), push: { enabled: true, token: TOKEN } }));
    assert.equal(idle.code, 0, idle.stdout);
    assert.match(line(idle.stdout), /^\s+WARN\s+.*no answer.*is vmbridge running/, idle.stdout);
  });
});
