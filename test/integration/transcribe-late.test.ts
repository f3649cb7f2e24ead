/**
 * Late transcripts through the real service on Dovecot and Redis, with a slow engine (the
 * `command` engine running a script that takes longer than the budget): the email goes at the
 * budget marked pending, and the transcription worker replaces it (same Message-ID) when the
 * transcript comes, keeping what the user did meanwhile; an email deleted meanwhile is not
 * brought back. The script waits for a release file, so the test decides when the transcript
 * comes, after the user's actions, without any timing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { PENDING_NOTE } from '../../src/transcribe/queued.js';
import { TRANSCRIPT_HEADING } from '../../src/transcribe/transcriber.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type SeenEmail } from '../support/mail-client.js';
import { toneWav } from '../support/tone.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 60_000, intervalMs: 200 };
const WORDS = 'please call me back about the invoice';
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

describe('late transcripts replace their email', { timeout: 240_000 }, () => {
  let h: Harness;
  let service: Service;
  let tone: Buffer;
  let release: string;
  let dir: string;
  const reconciled: string[] = [];

  const copiesOf = async (ref: MailboxRef, id: string): Promise<SeenEmail[]> =>
    (await (await h.mail(ref)).list(VOICEMAIL_FOLDERS)).filter((e) => e.messageId === identityMessageId(ref, id, DOMAIN));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-late-'));
    release = join(dir, 'release');
    const script = join(dir, 'slow-engine.sh');
    // Longer than the budget (1 s): it waits for the release file, at most two minutes.
    await writeFile(script, `#!/bin/sh\ni=0\nwhile [ ! -e '${release}' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\nprintf '{"text":"${WORDS}","confidence":0.8}'\n`);
    await chmod(script, 0o755);
    tone = await toneWav(dir);
    h = await startHarness({
      boxes: [{ mailbox: '4200', fullName: 'Kim Example' }, { mailbox: '4201', fullName: 'Lou Example' }],
      confExtra: '[general]\nformat=wav\n',
      settings: (base) => ({
        ...base,
        transcription: {
          enabled: true,
          budgetSeconds: 1,
          budgetPerAudioSecond: 0,
          models: { en: { engine: 'command', command: [script, '{wav}'], model: 'slow-test' } },
        },
      }),
    });
    service = await h.startService({ onReconciled: (ref) => reconciled.push(ref.mailbox) });
  });
  after(async () => {
    await service?.close();
    await h?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('goes at the budget marked pending, then is replaced: same Message-ID, the user\'s flags and folder kept', async () => {
    const ref = box('4200');
    await rm(release, { force: true });
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Jo" <5550400>', duration: 2, formats: ['wav'], audio: tone });
    const first = await waitFor('the pending email', async () => (await copiesOf(ref, left.msgId))[0], WAIT);
    const mc = await h.mail(ref);
    const pendingRaw = await simpleParser(await mc.source(first.folder, first.uid));
    assert.equal(pendingRaw.headers.get('x-vmbridge-transcript'), 'pending');
    assert.ok(pendingRaw.text?.startsWith(PENDING_NOTE), pendingRaw.text);
    assert.equal(pendingRaw.headers.get('x-asterisk-vm-transcription'), undefined);

    // Meanwhile the user reads it, flags it and files it into Work; the service carries that to the spool.
    await mc.client.mailboxCreate('Work').catch(() => undefined); // there already, or made now
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      assert.ok(await mc.client.messageFlagsAdd(String(first.uid), ['\\Seen', '\\Flagged'], { uid: true }));
      assert.ok(await mc.client.messageMove(String(first.uid), 'Work', { uid: true }), 'moved into Work');
    } finally {
      lock.release();
    }
    await waitFor('the voicemail filed in Work', async () => (await listFolder(h.spoolDir, ref, 'Work')).some((m) => m.msgId === left.msgId), WAIT);

    await writeFile(release, '');
    const replaced = await waitFor('the transcribed email', async () => {
      const copies = await copiesOf(ref, left.msgId);
      if (copies.length !== 1) return undefined;
      const parsed = await simpleParser(await mc.source(copies[0]!.folder, copies[0]!.uid));
      return parsed.headers.get('x-asterisk-vm-transcription') === WORDS ? { seen: copies[0]!, parsed } : undefined;
    }, WAIT);
    assert.equal(replaced.seen.folder, 'Work');
    assert.ok(replaced.seen.flags.has('\\Seen') && replaced.seen.flags.has('\\Flagged'), [...replaced.seen.flags].join(' '));
    assert.notEqual(replaced.seen.uid, first.uid);
    assert.equal(replaced.parsed.headers.get('x-vmbridge-transcript'), undefined);
    assert.ok(replaced.parsed.text?.startsWith(`${TRANSCRIPT_HEADING}\n${WORDS}\n\nCaller: Jo`), replaced.parsed.text);
    assert.deepEqual(replaced.parsed.attachments.map((a) => a.contentType), ['audio/mpeg']);
    // The next reconcile agrees: nothing of it moves back, and it stays one email.
    const before = reconciled.length;
    await service.requester.request(ref, 'test', { force: true });
    await waitFor('a reconcile after the replacement', async () => reconciled.slice(before).includes('4200'), WAIT);
    const after = await copiesOf(ref, left.msgId);
    assert.equal(after.length, 1);
    assert.ok((await listFolder(h.spoolDir, ref, 'Work')).some((m) => m.msgId === left.msgId));
  });

  it('an email the user deleted meanwhile is not brought back', async () => {
    const ref = box('4201');
    await rm(release, { force: true });
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Jo" <5550401>', duration: 2, formats: ['wav'], audio: tone });
    const first = await waitFor('the pending email', async () => (await copiesOf(ref, left.msgId))[0], WAIT);
    const mc = await h.mail(ref);
    const lock = await mc.client.getMailboxLock(first.folder);
    try {
      await mc.client.messageDelete(String(first.uid), { uid: true });
    } finally {
      lock.release();
    }
    await waitFor('the voicemail removed from the spool', async () => !(await listFolder(h.spoolDir, ref, 'INBOX')).some((m) => m.msgId === left.msgId), WAIT);
    await writeFile(release, '');
    await waitFor('the late transcript given up', async () => h.logLines.some((l) => l.includes(left.msgId) && (l.includes('late transcript not used') || l.includes('voicemail gone before its transcript'))), WAIT);
    assert.deepEqual(await copiesOf(ref, left.msgId), []);
  });
});
