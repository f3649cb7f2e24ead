/**
 * SIGHUP reads every setting again (src/service-reload.ts), shown on `vmbridge run` as an admin
 * runs it: a new file that does not load keeps the old settings running and names file and key;
 * a changed setting (the log level) restarts the service in the process with it, and voicemail
 * keeps arriving as email throughout; SIGTERM afterwards still exits 0. Real Dovecot and Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WAIT = { timeoutMs: 60_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '3820' };

describe('SIGHUP reloads every setting', { timeout: 180_000 }, () => {
  let h: Harness;
  let child: ChildProcess | undefined;
  let log = '';
  let configPath: string;
  const settingsFile = (level: string, more: { imapPort?: number; httpPort?: number } = {}) => stringify({ ...h.settings, imap: { ...h.settings.imap, port: more.imapPort ?? h.settings.imap.port }, log: { level }, notify: { ...h.settings.notify, listen: false }, http: { ...h.settings.http, host: '127.0.0.1', port: more.httpPort ?? 0 } });
  const emails = async (): Promise<number> => (await h.emails(ref)).length;
  /** Log lines written after `mark` (an offset into the log). */
  const since = (mark: number) => log.slice(mark);

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: ref.mailbox }] });
    configPath = join(h.dir, 'reload.yaml');
    await writeFile(configPath, settingsFile('info'));
    child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'run', '--config', configPath], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor('vmbridge started', () => log.includes('"msg":"vmbridge started"') || undefined, WAIT);
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await h?.stop();
  });

  it('a new file with a bad value keeps the old settings, naming file and key; voicemail still arrives', async () => {
    const mark = log.length;
    await writeFile(configPath, settingsFile('info', { imapPort: 70_000 }));
    child!.kill('SIGHUP');
    const line = await waitFor('the refused reload', () => since(mark).split('\n').find((l) => l.includes('settings not reloaded')), WAIT);
    const entry = JSON.parse(line) as { key?: string; file?: string; err: string };
    assert.equal(entry.key, 'imap.port');
    assert.equal(entry.file, configPath);
    assert.match(entry.err, /70000/);
    assert.equal(child!.exitCode, null, 'still running');
    await leaveVoicemail(h.spoolDir, ref, { callerid: '"Ann" <5551100>' });
    await waitFor('the email of a voicemail left after the refused reload', async () => ((await emails()) === 1 ? true : undefined), WAIT);
  });

  it('a changed log level restarts the service with it; voicemail arrives through the new one', async () => {
    const mark = log.length;
    await writeFile(configPath, settingsFile('debug'));
    child!.kill('SIGHUP');
    const line = await waitFor('the reload', () => since(mark).split('\n').find((l) => l.includes('"msg":"settings reloaded"')), WAIT);
    assert.deepEqual((JSON.parse(line) as { changed: string[] }).changed, ['log.level']);
    assert.match(since(mark), /"msg":"settings changed: restarting the service with them"/);
    assert.match(since(mark), /"msg":"vmbridge started"/, 'started again');
    const debugMark = log.length;
    await leaveVoicemail(h.spoolDir, ref, { callerid: '"Bo" <5551101>' });
    await waitFor('the email of a voicemail left after the reload', async () => ((await emails()) === 2 ? true : undefined), WAIT);
    assert.match(since(debugMark), /"level":"debug"/, 'the new level is in effect');
  });

  it('new settings that load but cannot start (a taken http.port) bring the old ones back', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const mark = log.length;
      await writeFile(configPath, settingsFile('debug', { httpPort: (taken.address() as AddressInfo).port }));
      child!.kill('SIGHUP');
      const line = await waitFor('the restore', () => since(mark).split('\n').find((l) => l.includes('the new settings do not start')), WAIT);
      assert.match(line, /http\.port/);
      await waitFor('the old settings running again', () => (since(mark).split('"msg":"vmbridge started"').length >= 2 ? true : undefined), WAIT);
      await leaveVoicemail(h.spoolDir, ref, { callerid: '"Cy" <5551102>' });
      await waitFor('the email of a voicemail left after the restore', async () => ((await emails()) === 3 ? true : undefined), WAIT);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
    await writeFile(configPath, settingsFile('debug'));
  });

  it('an unchanged file re-reads voicemail.conf only, and SIGTERM still exits 0', async () => {
    const mark = log.length;
    child!.kill('SIGHUP');
    await waitFor('voicemail.conf reloaded', () => since(mark).includes('"msg":"voicemail.conf reloaded"') || undefined, WAIT);
    assert.doesNotMatch(since(mark), /restarting the service/);
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    assert.equal(await exited, 0, since(mark).slice(-2000));
  });
});
