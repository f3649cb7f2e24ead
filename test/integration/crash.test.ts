/**
 * Crash safety: the real `vmbridge run` process is killed with SIGKILL at random points, during an
 * initial import and during a wave of phone-side changes, and restarted. After it settles, every
 * voicemail must be in IMAP exactly once, in the right folder with the right flags, and nothing
 * else of ours may be there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { SYNCED_SPOOL_FOLDERS, type MailboxRef, type SyncedSpoolFolder } from '../../src/spool/types.js';
import { deleteMessage, hearMessage, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOMAIN = 'vmbridge.test';
const refs: MailboxRef[] = [{ context: 'default', mailbox: '3000' }, { context: 'default', mailbox: '3001' }];

/** Deterministic pseudo-random numbers, so a failing run can be repeated (seed printed). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EXPECT: Record<SyncedSpoolFolder, { folder: string; seen?: boolean; flagged?: boolean }> = {
  INBOX: { folder: 'INBOX', seen: false, flagged: false },
  Urgent: { folder: 'INBOX', seen: false, flagged: true },
  Old: { folder: 'INBOX', seen: true },
  Work: { folder: 'Work' },
  Family: { folder: 'Family' },
  Friends: { folder: 'Friends' },
};

describe('crash safety of vmbridge run (SIGKILL at random points)', { timeout: 600_000 }, () => {
  let h: Harness;
  let configPath: string;
  let logPath: string;
  let child: ChildProcess | undefined;
  const clients = new Map<string, MailClient>();
  const seed = Number(process.env.VMB_CRASH_SEED ?? Date.now() % 1_000_000);
  const random = rng(seed);
  let kills = 0;

  before(async () => {
    h = await startHarness({ boxes: refs.map((r) => ({ mailbox: r.mailbox })) });
    configPath = join(h.dir, 'vmbridge.yaml');
    logPath = join(h.dir, 'run.log');
    await writeFile(configPath, stringify(h.settings));
    for (const ref of refs) clients.set(ref.mailbox, await h.mail(ref));
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await h?.stop();
  });

  function start(): ChildProcess {
    const fd = openSync(logPath, 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'run', '--config', configPath], {
      cwd: ROOT,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    return p;
  }

  async function killAfter(ms: number): Promise<void> {
    const p = start();
    child = p;
    await new Promise((r) => setTimeout(r, ms));
    if (p.exitCode !== null) throw new Error(`vmbridge run exited early (${p.exitCode}); log:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    kills++;
  }

  /** Every spool voicemail exactly once in IMAP, where and how its folder says; no other email of ours. */
  async function converged(): Promise<string | true> {
    for (const ref of refs) {
      const expected = new Map<string, SyncedSpoolFolder>();
      for (const folder of SYNCED_SPOOL_FOLDERS) {
        for (const m of await listFolder(h.spoolDir, ref, folder)) expected.set(identityMessageId(ref, m.msgId, DOMAIN), folder);
      }
      const emails = (await clients.get(ref.mailbox)!.list(VOICEMAIL_FOLDERS)).filter((e) => e.messageId.endsWith(`@${DOMAIN}>`));
      const byId = new Map<string, typeof emails>();
      for (const e of emails) byId.set(e.messageId, [...(byId.get(e.messageId) ?? []), e]);
      for (const [id, folder] of expected) {
        const got = byId.get(id) ?? [];
        if (got.length !== 1) return `${ref.mailbox}: ${id} in IMAP ${got.length} times`;
        const want = EXPECT[folder];
        const e = got[0]!;
        if (e.folder !== want.folder) return `${ref.mailbox}: ${id} in ${e.folder}, wanted ${want.folder}`;
        if (want.seen !== undefined && e.flags.has('\\Seen') !== want.seen) return `${ref.mailbox}: ${id} \\Seen wrong`;
        if (want.flagged !== undefined && e.flags.has('\\Flagged') !== want.flagged) return `${ref.mailbox}: ${id} \\Flagged wrong`;
      }
      for (const id of byId.keys()) if (!expected.has(id)) return `${ref.mailbox}: stray email ${id}`;
    }
    return true;
  }

  async function settle(): Promise<void> {
    child = start();
    let last: string | true = 'not checked';
    await waitFor('convergence after restart', async () => {
      last = await converged();
      return last === true;
    }, { timeoutMs: 120_000, intervalMs: 500 }).catch((err: Error) => {
      throw new Error(`${err.message}: ${String(last)} (seed ${seed}); log tail:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
    });
    const p = child;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  it(`initial import of 2 x 120 voicemails survives 12 kills (seed ${seed})`, async () => {
    for (const ref of refs) {
      for (let i = 0; i < 120; i++) {
        await leaveVoicemail(h.spoolDir, ref, { callerid: `"Crash ${i}" <${7000 + i}>`, duration: 2, urgent: i % 10 === 0 });
      }
    }
    for (let i = 0; i < 12; i++) await killAfter(700 + Math.floor(random() * 1500));
    await settle();
  });

  it(`a wave of phone-side changes survives 10 more kills (seed ${seed})`, async () => {
    let stopWave = false;
    const wave = (async () => {
      let n = 0;
      // Runs until the kills are done and at least 60 changes were made, however busy the machine.
      while (!stopWave || n < 60) {
        const ref = refs[Math.floor(random() * refs.length)]!;
        const pick = random();
        const inbox = await listFolder(h.spoolDir, ref, 'INBOX');
        const old = await listFolder(h.spoolDir, ref, 'Old');
        if (pick < 0.25 || inbox.length === 0) {
          await leaveVoicemail(h.spoolDir, ref, { callerid: `"Wave ${n}" <${8000 + n}>`, duration: 3, urgent: random() < 0.2 });
        } else if (pick < 0.5) {
          await hearMessage(h.spoolDir, ref, inbox[Math.floor(random() * inbox.length)]!.msgnum);
        } else if (pick < 0.7) {
          const to = (['Work', 'Family', 'Friends'] as const)[Math.floor(random() * 3)]!;
          await moveMessage(h.spoolDir, ref, 'INBOX', inbox[Math.floor(random() * inbox.length)]!.msgnum, to);
        } else if (old.length > 0) {
          await deleteMessage(h.spoolDir, ref, 'Old', old[Math.floor(random() * old.length)]!.msgnum);
        }
        n++;
        await new Promise((r) => setTimeout(r, 20 + random() * 60));
      }
      return n;
    })();
    const before = kills;
    for (let i = 0; i < 10; i++) await killAfter(600 + Math.floor(random() * 1400));
    stopWave = true;
    const changes = await wave;
    assert.ok(changes >= 60, `the wave made ${changes} changes`);
    assert.equal(kills - before, 10);
    await settle();
    assert.ok(kills >= 22, `${kills} kills in all`);
  });
});
