/**
 * A site that used Asterisk's IMAP storage keeps its voicemail.conf and states no IMAP server in
 * vmbridge's settings: `vmbridge sync` finds the server, its port, its flags and the parent folder
 * in voicemail.conf's [general], and its voicemail arrives there. Real Dovecot and Redis; vmbridge
 * as the command an admin runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ref: MailboxRef = { context: 'default', mailbox: '3810' };
const other: MailboxRef = { context: 'default', mailbox: '3811' };

function vmbridge(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('the IMAP server and folders from voicemail.conf [general]', { timeout: 120_000 }, () => {
  let h: Harness;
  let configPath: string;
  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: ref.mailbox }, { mailbox: other.mailbox, options: 'imapserver=imap.elsewhere.example' }] });
    // As an IMAP_STORAGE site writes it: server, port and flags in [general], saved messages under a parent.
    await h.writeConf(`[general]\nimapserver=127.0.0.1\nimapport=${h.imap.port}\nimapflags=notls/imap4rev1\nimapparentfolder=Voicemail\n`);
    const { host: _host, port: _port, secure: _secure, requireTls: _requireTls, folders: _folders, ...imapRest } = h.settings.imap;
    configPath = join(h.dir, 'from-conf.yaml');
    await writeFile(configPath, stringify({ ...h.settings, imap: imapRest }));
  });
  after(async () => {
    await h?.stop();
  });

  it('vmbridge sync reaches the server voicemail.conf names and files saved voicemail under its parent folder', async () => {
    await leaveVoicemail(h.spoolDir, ref, { callerid: '"Ann" <5551000>' });
    const second = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Bo" <5551001>' });
    await moveMessage(h.spoolDir, ref, 'INBOX', second.msgnum, 'Work');
    await leaveVoicemail(h.spoolDir, other, { callerid: '"Cy" <5551002>' });

    const run = await vmbridge(['sync', '--config', configPath, '--no-mwi']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await h.emails(ref)).length, 1, 'the new voicemail in INBOX');
    assert.equal((await h.emails(ref, 'Voicemail/Work')).length, 1, 'the saved one in Voicemail/Work (imapparentfolder)');
    // The mailbox whose own imapserver= names another server is left out, and said so.
    assert.equal((await h.emails(other)).length, 0);
    assert.match(run.stderr + run.stdout, /3811@default.*imapserver=imap\.elsewhere\.example puts this mailbox on another IMAP server than imap\.host \(127\.0\.0\.1\)/);

    const doctor = await vmbridge(['doctor', '--config', configPath]);
    assert.match(doctor.stdout, /imap\.host = "127\.0\.0\.1" from voicemail\.conf \[general\] imapserver=127\.0\.0\.1/);
    assert.match(doctor.stdout, /imap\.requireTls = false from voicemail\.conf \[general\] imapflags=notls\/imap4rev1/);
  });
});
