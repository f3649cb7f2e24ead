/**
 * The smdi MWI target through the running service, on real Dovecot and Redis: voicemail left in
 * the spool the way Asterisk leaves it becomes OP:MWI on the serial line (a socat pseudo-terminal
 * pair), its deletion RMV:MWI, and a second message on a lit lamp sends nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailboxRef } from '../../src/spool/types.js';
import { deleteMessage, hearMessage, leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { openPtyEnd, startPtyPair, type PtyEnd, type PtyPair } from '../support/pty-pair.js';
import { waitFor } from '../support/wait.js';

const WAIT = { timeoutMs: 45_000, intervalMs: 100 };
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

describe('SMDI lamps from the service', { timeout: 180_000 }, () => {
  let h: Harness;
  let pair: PtyPair;
  let sw: PtyEnd;

  before(async () => {
    h = await startHarness({
      boxes: [{ mailbox: '1000' }, { mailbox: '1001' }],
      settings: (base) => {
        const dir = (base.spool as { dir: string }).dir;
        return {
          ...base,
          mwi: {
            targets: [{ name: 'lamps', kind: 'smdi', smdiConf: join(dir, '..', 'smdi.conf'), reopenMaxSeconds: 2 }],
            retrySeconds: 1,
            retryMaxSeconds: 2,
            concurrency: 2,
          },
        };
      },
    });
    pair = await startPtyPair(join(h.dir, 'ttyA'), join(h.dir, 'ttyB'));
    sw = await openPtyEnd(pair.b);
    await writeFile(
      join(h.dir, 'smdi.conf'),
      `[interfaces]\ncharsize = 8\nparitybit = none\nsmdiport => ${pair.a}\n[mailboxes]\nsmdiport = ${pair.a}\n5551000 = 1000@default\n5551001 = 1001\n`,
    );
    await h.startService();
  });
  after(async () => {
    await h?.stop();
    sw?.close();
    await pair?.stop();
  });

  /** The lamp messages each station got, in order. */
  const toStation = (station: string): string[] =>
    sw
      .bytes()
      .toString('latin1')
      .split('\x04')
      .filter((m) => m.endsWith(` ${station}!`))
      .map((m) => m.split(':')[0] ?? '');

  it('tells each mapped station the truth once, then lights and clears with the spool', async () => {
    // The first reconcile of the empty mailboxes: both lamps cleared once.
    await waitFor('RMV for both stations', () => toStation('5551000').length === 1 && toStation('5551001').length === 1, WAIT);
    assert.deepEqual(toStation('5551000'), ['RMV']);

    const ref = box('1000');
    await leaveVoicemail(h.spoolDir, ref);
    await waitFor('OP:MWI for 5551000', () => toStation('5551000').length === 2, WAIT);
    assert.deepEqual(toStation('5551000'), ['RMV', 'OP']);

    // A second new message and one of two heard: the lamp stays on, so nothing is sent.
    await leaveVoicemail(h.spoolDir, ref);
    const mail = await h.mail(ref);
    await waitFor('both voicemails in IMAP', async () => (await mail.list(['INBOX'])).length === 2, WAIT);
    await hearMessage(h.spoolDir, ref, 0);
    await waitFor('one of them seen in IMAP', async () => (await mail.list(['INBOX'])).filter((m) => m.flags.has('\\Seen')).length === 1, WAIT);

    await deleteMessage(h.spoolDir, ref, 'INBOX', 0);
    await waitFor('RMV:MWI for 5551000', () => toStation('5551000').length === 3, WAIT);
    assert.deepEqual(toStation('5551000'), ['RMV', 'OP', 'RMV']);
    assert.deepEqual(toStation('5551001'), ['RMV']);
    assert.ok(h.logLines.some((l) => l.includes('SMDI lamp message sent') && l.includes('"station":"5551000"')));
  });
});
