/**
 * Progress of a pass over several mailboxes, on real Dovecot and Redis: the service's start-up pass
 * and `vmbridge sync` with its output in a pipe write `progress` log lines (done of total,
 * appended, rate, time left) up to done = total; on a terminal (a pseudo-terminal made by
 * `script`) `vmbridge sync` keeps a status line instead, and its per-mailbox lines are unchanged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'src/cli/bin.ts');
const refs: MailboxRef[] = ['3800', '3801', '3802', '3803'].map((mailbox) => ({ context: 'default', mailbox }));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(file, [...args], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** The `progress` lines among JSON log lines. */
function progressLines(log: string): Array<Record<string, unknown>> {
  return log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'progress');
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('progress of a pass over many mailboxes', { timeout: 240_000 }, () => {
  let h: Harness;
  let configPath: string;

  before(async () => {
    h = await startHarness({ boxes: refs.map((r) => ({ mailbox: r.mailbox })) });
    configPath = join(h.dir, 'vmbridge.yaml');
    await writeFile(configPath, stringify({ ...h.settings, notify: { ...h.settings.notify, listen: false } }));
  });
  after(async () => {
    await h?.stop();
  });

  it('the service\'s start-up pass logs progress up to every mailbox done, with what it appended', async () => {
    await leaveVoicemail(h.spoolDir, refs[0]!, { callerid: '"A" <1>', duration: 1 });
    await leaveVoicemail(h.spoolDir, refs[0]!, { callerid: '"B" <2>', duration: 1 });
    await leaveVoicemail(h.spoolDir, refs[2]!, { callerid: '"C" <3>', duration: 1 });
    let log = '';
    const p = spawn(process.execPath, ['--import', 'tsx', BIN, 'run', '--config', configPath], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    try {
      await waitFor('the last start-up progress line', () => progressLines(log).some((l) => l.done === 4) || undefined, { timeoutMs: 90_000, intervalMs: 200 });
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0, log.slice(-2000));
    const lines = progressLines(log);
    assert.deepEqual(lines.map((l) => [l.phase, l.done, l.total]), [['start', 1, 4], ['start', 2, 4], ['start', 3, 4], ['start', 4, 4]], log.slice(-3000));
    const last = lines.at(-1)!;
    assert.equal(last.appended, 3, 'three voicemails appended in the pass');
    assert.equal(last.etaSeconds, 0);
    assert.equal(typeof last.rate, 'number');
  });

  it('vmbridge sync into a pipe: its lines as before on stdout, progress log lines on stderr', async () => {
    await leaveVoicemail(h.spoolDir, refs[1]!, { callerid: '"D" <4>', duration: 1 });
    await leaveVoicemail(h.spoolDir, refs[3]!, { callerid: '"E" <5>', duration: 1 });
    const r = await run(process.execPath, ['--import', 'tsx', BIN, 'sync', '--no-mwi', '--config', configPath]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\[1\/4\] 3800@default: in step, nothing to do\n/);
    assert.match(r.stdout, /\n\[2\/4\] 3801@default: 1 change applied\n/);
    assert.doesNotMatch(r.stdout, /mailboxes|\r/, 'no status line where no terminal is');
    const lines = progressLines(r.stderr);
    assert.deepEqual(lines.map((l) => [l.done, l.total]), [[1, 4], [2, 4], [3, 4], [4, 4]], r.stderr);
    assert.deepEqual(lines.map((l) => l.appended), [0, 1, 1, 2]);
    const last = lines.at(-1)!;
    assert.equal(last.etaSeconds, 0);
    assert.equal(last.failed, 0);
    for (const key of ['rate', 'mailboxRate', 'elapsedSeconds']) assert.equal(typeof last[key], 'number', key);
  });

  it('vmbridge sync on a terminal: a status line showing done/total, and no progress log lines', async () => {
    await leaveVoicemail(h.spoolDir, refs[2]!, { callerid: '"F" <6>', duration: 1 });
    const command = [process.execPath, '--import', 'tsx', BIN, 'sync', '--no-mwi', '--config', configPath].map(shellQuote).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies what it shows to its own stdout.
    const r = await run('script', ['-qec', command, '/dev/null']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\[3\/4\] 3802@default: 1 change applied\r?\n/);
    assert.match(r.stdout, /\r0\/4 mailboxes, 0 appended \(0\.0\/s\), \? left\x1b\[K/, 'the line before the first mailbox');
    assert.match(r.stdout, /\r3\/4 mailboxes, 1 appended \([\d.]+\/s\), \S+ left\x1b\[K/);
    assert.match(r.stdout, /\r4\/4 mailboxes, 1 appended \([\d.]+\/s\), done in \S+\x1b\[K\r?\n/, 'the last line stays');
    assert.doesNotMatch(r.stdout, /"msg":"progress"/);
  });
});
