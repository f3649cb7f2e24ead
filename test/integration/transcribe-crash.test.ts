/**
 * A late transcript's replacement is crash-safe: the real `vmbridge run` process is killed with
 * SIGKILL right between the APPEND of the transcribed email and the UID EXPUNGE of the pending
 * one (VMB_FAULT_POINT, src/transcribe/fault.ts), so the mailbox holds both copies of one
 * identity. After a restart the reconcile must leave exactly one email, the transcribed one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { simpleParser } from 'mailparser';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';
import { toneWav } from '../support/tone.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOMAIN = 'vmbridge.test';
const WORDS = 'the meeting moved to friday';
const ref: MailboxRef = { context: 'default', mailbox: '4300' };

describe('a late transcript survives SIGKILL between its APPEND and the EXPUNGE', { timeout: 300_000 }, () => {
  let h: Harness;
  let dir: string;
  let configPath: string;
  let logPath: string;
  let child: ChildProcess | undefined;
  let mc: MailClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-late-crash-'));
    const script = join(dir, 'slow-engine.sh');
    // Longer than the 1 s budget, so the email goes pending and is replaced.
    await writeFile(script, `#!/bin/sh\nsleep 3\nprintf '{"text":"${WORDS}"}'\n`);
    await chmod(script, 0o755);
    h = await startHarness({
      boxes: [{ mailbox: ref.mailbox, fullName: 'Max Example' }],
      confExtra: '[general]\nformat=wav\n',
      settings: (base) => ({
        ...base,
        transcription: { enabled: true, budgetSeconds: 1, budgetPerAudioSecond: 0, models: { en: { engine: 'command', command: [script, '{wav}'], model: 'slow-test' } } },
      }),
    });
    configPath = join(h.dir, 'vmbridge.yaml');
    logPath = join(h.dir, 'run.log');
    await writeFile(configPath, stringify(h.settings));
    mc = await h.mail(ref);
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await h?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function start(env: Record<string, string> = {}): ChildProcess {
    const fd = openSync(logPath, 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'run', '--config', configPath], { cwd: ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    return p;
  }

  const copies = async (): Promise<{ uid: number; folder: string; pending: boolean; transcript: string | undefined }[]> => {
    const out = [];
    for (const e of (await mc.list(VOICEMAIL_FOLDERS)).filter((x) => x.messageId.endsWith(`@${DOMAIN}>`))) {
      const parsed = await simpleParser(await mc.source(e.folder, e.uid));
      const t = parsed.headers.get('x-asterisk-vm-transcription');
      out.push({ uid: e.uid, folder: e.folder, pending: parsed.headers.get('x-vmbridge-transcript') === 'pending', transcript: typeof t === 'string' ? t : undefined });
    }
    return out;
  };

  it('leaves exactly one email, the transcribed one', async () => {
    const p = start({ VMB_FAULT_POINT: 'transcript-appended' });
    child = p;
    const exited = new Promise<NodeJS.Signals | null>((r) => p.once('exit', (_code, signal) => r(signal)));
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Jo" <5550500>', duration: 2, formats: ['wav'], audio: await toneWav(dir) });
    // A plain timer, cleared once the child has died: a poll left running would hold the file open for its whole bound.
    let bound: NodeJS.Timeout | undefined;
    const stillRunning = new Promise<string>((r) => (bound = setTimeout(() => r('still running'), 120_000)));
    const signal = await Promise.race([exited, stillRunning]);
    clearTimeout(bound);
    assert.equal(signal, 'SIGKILL', `log tail:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);

    // Killed between the two: both versions are there, with one identity.
    const messageId = identityMessageId(ref, left.msgId, DOMAIN);
    const both = await copies();
    assert.equal((await mc.list(VOICEMAIL_FOLDERS)).filter((e) => e.messageId === messageId).length, 2);
    assert.deepEqual(both.map((c) => [c.pending, c.transcript]).sort(), [[false, WORDS], [true, undefined]]);
    const transcribed = both.find((c) => !c.pending)!;

    child = start();
    let last: unknown;
    await waitFor('one email left after the restart', async () => {
      last = await copies();
      const now = last as Awaited<ReturnType<typeof copies>>;
      return now.length === 1 && now[0]!.uid === transcribed.uid && !now[0]!.pending && now[0]!.transcript === WORDS;
    }, { timeoutMs: 120_000, intervalMs: 500 }).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(last)}; log tail:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
    });
    const stopped = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await stopped;
  });
});
