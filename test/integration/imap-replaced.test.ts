/**
 * Deletions that cannot run away, per mailbox: when the IMAP side looks replaced rather than
 * edited, no voicemail is deleted, however small the mailbox. Real Dovecot and Redis:
 *  - a user renames the folder that holds a filed voicemail's email (the folder is missing);
 *  - voicemail.conf is changed to an IMAP account that holds none of the emails (its INBOX has
 *    another UIDVALIDITY than the one recorded), as a wrong imapuser= would.
 * Both sides are kept, and the admin is told in the log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, userOf, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('an IMAP side that looks replaced deletes nothing', { timeout: 180_000 }, () => {
  const a: MailboxRef = { context: 'default', mailbox: '3500' };
  const b: MailboxRef = { context: 'default', mailbox: '3501' };
  let h: Harness;
  let service: Service;

  const where = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of ['INBOX', 'Old', 'Work'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const reconciledAgain = async (ref: MailboxRef): Promise<void> => {
    const mark = h.logLines.length;
    await service.requester.request(ref, 'test', { force: true });
    await waitFor('a reconcile', () => h.logLines.slice(mark).some((l) => l.includes(`${ref.mailbox}@${ref.context}`) && (l.includes('"msg":"held"') || l.includes('looks replaced') || l.includes('reconciled'))) || undefined, WAIT);
    await sleep(1_500);
  };

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: a.mailbox }, { mailbox: b.mailbox }], logLevel: 'debug' });
    service = await h.startService();
  });
  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('a user renames the folder holding a filed voicemail: the voicemail stays, and the admin is told', async () => {
    const left = await leaveVoicemail(h.spoolDir, a, { callerid: '"Filed" <5550001>', duration: 2 });
    const mc = await h.mail(a);
    await waitFor('the email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(a, left.msgId, DOMAIN)) || undefined, WAIT);
    // Filed to Work on the phone: the email follows into Work.
    const num = (await listFolder(h.spoolDir, a, 'INBOX')).find((m) => m.msgId === left.msgId)!.msgnum;
    await moveMessage(h.spoolDir, a, 'INBOX', num, 'Work');
    await waitFor('the email in Work', async () => (await mc.list(['Work'])).some((e) => e.messageId === identityMessageId(a, left.msgId, DOMAIN)) || undefined, WAIT);
    await sleep(1_000);
    await mc.client.mailboxRename('Work', 'Work-old');
    await reconciledAgain(a);
    assert.deepEqual(await where(a, left.msgId), ['Work'], 'the voicemail is kept');
    assert.ok(h.logLines.some((l) => l.includes('IMAP side looks replaced') && l.includes('3500@default')), 'the admin is told');
  });

  it('voicemail.conf now names another, empty IMAP account: nothing is deleted', async () => {
    const left = await leaveVoicemail(h.spoolDir, b, { callerid: '"Kept" <5550002>', duration: 2 });
    const mc = await h.mail(b);
    await waitFor('the email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(b, left.msgId, DOMAIN)) || undefined, WAIT);
    await sleep(1_100); // the other account's INBOX is made later, so it gets another UIDVALIDITY
    const other = userOf(a);
    // Mailbox 3501 now logs in as u3500, which holds none of its emails (as a wrong imapuser= would).
    const conf = await readFile(h.confPath, 'utf8');
    const moved = conf.replace(`imapuser=${userOf(b)}|imappassword=pw-${userOf(b)}`, `imapuser=${other}|imappassword=pw-${other}`);
    assert.notEqual(moved, conf);
    await writeFile(h.confPath, moved);
    await service.reload();
    await reconciledAgain(b);
    assert.deepEqual(await where(b, left.msgId), ['INBOX'], 'the voicemail is kept');
    assert.equal((await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(b, left.msgId, DOMAIN)), true, 'its email is kept in the right account');
    assert.ok(h.logLines.some((l) => l.includes('IMAP side looks replaced') && l.includes('3501@default')));

    // The admin says the change is meant: the records are forgotten and the voicemail's email is
    // written into the account voicemail.conf names now.
    const configPath = join(h.dir, 'accept.yaml');
    await writeFile(configPath, stringify(h.settings));
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'sync', '--config', configPath, '--no-mwi', '--mailbox', '3501@default', '--accept-account'], { cwd: ROOT }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /records of the earlier IMAP account forgotten; syncing with u3500/);
    const inOther = await h.mail(a);
    await waitFor('the email in the account voicemail.conf names now', async () => (await inOther.list(['INBOX'])).some((e) => e.messageId === identityMessageId(b, left.msgId, DOMAIN)) || undefined, WAIT);
    assert.deepEqual(await where(b, left.msgId), ['INBOX'], 'still kept on the phone');
  });
});
