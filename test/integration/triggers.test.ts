/**
 * The triggers other than the spool watcher: `vmbridge notify` with both argument shapes Asterisk's
 * externnotify uses, and the periodic sweep.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const ref: MailboxRef = { context: 'default', mailbox: '6000' };

describe('externnotify and the sweep', { timeout: 120_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.stop();
  });

  it('vmbridge notify, in both argument shapes, makes a running vmbridge import the new voicemail', async () => {
    // No watcher and no sweep: only notify can trigger the reconcile.
    const h = await startHarness({ boxes: [{ mailbox: ref.mailbox }], settings: (b) => ({ ...b, spool: { ...(b.spool as object), watch: false, sweepSeconds: 0 } }) });
    harnesses.push(h);
    const configPath = join(h.dir, 'vmbridge.yaml');
    await writeFile(configPath, stringify(h.settings));
    await h.startService();
    const mc = await h.mail(ref);
    const notify = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'notify', '--config', configPath, ...args], { cwd: ROOT });

    const first = await leaveVoicemail(h.spoolDir, ref, { callerid: '"First" <1>', duration: 2 });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await mc.list(['INBOX'])).length, 0, 'nothing happens without a trigger');
    // After a message is left: `<context> <mailbox> <new> <old> <urgent>`.
    await notify('default', '6000', '1', '0', '0');
    await waitFor('the first email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, first.msgId, 'vmbridge.test')));

    // After a poll or VoicemailRefresh: `"" <mailbox>@<context> <new> <old> <urgent>`.
    const second = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Second" <2>', duration: 2 });
    await notify('', '6000@default', '2', '0', '0');
    await waitFor('the second email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, second.msgId, 'vmbridge.test')));

    await assert.rejects(notify('default', '../etc', '1', '0', '0'), (err: { code?: number; stderr?: string }) => err.code === 1 && /not a safe spool name/.test(err.stderr ?? ''));
  });

  it('the periodic sweep finds a voicemail no event announced', async () => {
    const other: MailboxRef = { context: 'default', mailbox: '6001' };
    const h = await startHarness({ boxes: [{ mailbox: other.mailbox }], settings: (b) => ({ ...b, spool: { ...(b.spool as object), watch: false, sweepSeconds: 1 } }) });
    harnesses.push(h);
    await h.startService();
    const mc = await h.mail(other);
    const left = await leaveVoicemail(h.spoolDir, other, { callerid: '"Swept" <3>', duration: 2 });
    await waitFor('the swept email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(other, left.msgId, 'vmbridge.test')), { timeoutMs: 20_000 });
  });
});
