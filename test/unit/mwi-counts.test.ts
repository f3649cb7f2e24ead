/**
 * MWI counts from a spool snapshot: Asterisk's published numbers (new = INBOX + Urgent,
 * old = Old), never from an unsettled read, never negative, and the worker's capped backoff.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isValidCounts, MwiCountsError, mwiCounts, sameAsShown, sameCounts } from '../../src/mwi/counts.js';
import { mwiBackoffMs } from '../../src/queue/mwi-queue.js';
import { readMailbox } from '../../src/spool/read-mailbox.js';
import type { MailboxRef, SpoolMessage, SpoolSnapshot, SyncedSpoolFolder } from '../../src/spool/types.js';
import { folderDir, hearMessage, leaveVoicemail, saveToFolder } from '../support/asterisk-spool.js';

const REF: MailboxRef = { context: 'default', mailbox: '1000' };

function message(folder: SyncedSpoolFolder, n: number): SpoolMessage {
  return {
    id: `${folder}-${n}`,
    derivedId: false,
    folder,
    msgnum: n,
    txtPath: `/spool/voicemail/default/1000/${folder}/msg${String(n).padStart(4, '0')}.txt`,
    audio: [],
    envelope: {} as SpoolMessage['envelope'],
  };
}

function snapshot(folders: Partial<Record<SyncedSpoolFolder, number>>, settled = true): SpoolSnapshot {
  const messages: SpoolMessage[] = [];
  for (const [folder, count] of Object.entries(folders) as [SyncedSpoolFolder, number][]) {
    for (let i = 0; i < count; i++) messages.push(message(folder, i));
  }
  return { ref: REF, messages, problems: [], settled };
}

describe('mwiCounts', () => {
  it('counts like Asterisk publishes: new = INBOX + Urgent, old = Old, urgent apart', () => {
    assert.deepEqual(mwiCounts(snapshot({ INBOX: 2, Urgent: 1, Old: 5 })), { new: 3, old: 5, urgent: 1 });
    assert.deepEqual(mwiCounts(snapshot({})), { new: 0, old: 0, urgent: 0 });
  });

  it('does not count filed messages (Work, Family, Friends)', () => {
    assert.deepEqual(mwiCounts(snapshot({ INBOX: 1, Work: 3, Family: 2, Friends: 1 })), { new: 1, old: 0, urgent: 0 });
  });

  it('refuses an unsettled snapshot: unknown is not zero', () => {
    assert.throws(() => mwiCounts(snapshot({ INBOX: 1 }, false)), (err: unknown) => err instanceof MwiCountsError && err.code === 'MWI_COUNTS');
  });

  it('counts an envelope vmbridge could not use, as Asterisk counts every msgNNNN.txt', () => {
    const s: SpoolSnapshot = {
      ref: REF,
      messages: [message('INBOX', 0)],
      problems: [
        { path: '/spool/voicemail/default/1000/INBOX/msg0001.txt', problem: 'has no audio file beside it' },
        { path: '/spool/voicemail/default/1000/Old/msg0000.txt', problem: 'cannot be read: EACCES' },
        { path: '/spool/voicemail/default/1000/INBOX/msg0002.wav', problem: 'is a symbolic link' },
        { path: '/spool/voicemail/default/1000/Work/msg0000.txt', problem: 'cannot be read' },
        { path: '/spool/voicemail/default/1000/INBOX/msg0000.txt', problem: 'duplicate report of a counted message' },
      ],
      settled: true,
    };
    assert.deepEqual(mwiCounts(s), { new: 2, old: 1, urgent: 0 });
  });

  it('always gives whole numbers ≥ 0 with urgent within new (property)', () => {
    fc.assert(
      fc.property(fc.nat(30), fc.nat(30), fc.nat(30), fc.nat(30), (inbox, urgent, old, work) => {
        const c = mwiCounts(snapshot({ INBOX: inbox, Urgent: urgent, Old: old, Work: work }));
        assert.ok(isValidCounts(c));
        assert.deepEqual(c, { new: inbox + urgent, old, urgent });
      }),
    );
  });

  it('sameAsShown: MWIUpdate and MailboxStateChange carry no urgent count, the others do', () => {
    const plain = { new: 5, old: 0, urgent: 0 };
    const urgent = { new: 5, old: 0, urgent: 1 };
    assert.equal(sameAsShown('ami-mwiupdate', plain, urgent), true);
    assert.equal(sameAsShown('ami-mailboxstate', plain, urgent), true);
    assert.equal(sameAsShown('sip-notify', plain, urgent), false);
    assert.equal(sameAsShown('ami-refresh', plain, urgent), false);
    assert.equal(sameAsShown('ami-mwiupdate', plain, { new: 4, old: 1, urgent: 0 }), false);
    assert.equal(sameAsShown('ami-mwiupdate', undefined, plain), false, 'never told: not the same');
  });

  it('sameCounts and isValidCounts', () => {
    assert.equal(sameCounts({ new: 1, old: 2, urgent: 0 }, { new: 1, old: 2, urgent: 0 }), true);
    assert.equal(sameCounts({ new: 1, old: 2, urgent: 0 }, { new: 1, old: 2, urgent: 1 }), false);
    assert.equal(sameCounts(undefined, { new: 0, old: 0, urgent: 0 }), false);
    assert.equal(isValidCounts({ new: -1, old: 0, urgent: 0 }), false);
    assert.equal(isValidCounts({ new: 1.5, old: 0, urgent: 0 }), false);
    assert.equal(isValidCounts({ new: 0, old: Number.NaN, urgent: 0 }), false);
    assert.equal(isValidCounts({ new: 0, old: 0, urgent: 1 }), false);
  });
});

describe('mwiCounts on a real spool written the way Asterisk writes it', () => {
  let spool: string;
  before(async () => {
    spool = await mkdtemp(join(tmpdir(), 'vmb-mwi-counts-'));
    await mkdir(join(spool, 'voicemail'), { recursive: true });
  });
  after(async () => {
    await rm(spool, { recursive: true, force: true });
  });

  it('follows new, urgent, heard and filed messages', async () => {
    await leaveVoicemail(spool, REF);
    await leaveVoicemail(spool, REF);
    await leaveVoicemail(spool, REF, { urgent: true });
    assert.deepEqual(mwiCounts(await readMailbox(spool, REF)), { new: 3, old: 0, urgent: 1 });
    await hearMessage(spool, REF, 0);
    assert.deepEqual(mwiCounts(await readMailbox(spool, REF)), { new: 2, old: 1, urgent: 1 });
    await hearMessage(spool, REF, 0, 'Urgent');
    await saveToFolder(spool, REF, 'Old', 0, 'Work');
    assert.deepEqual(mwiCounts(await readMailbox(spool, REF)), { new: 1, old: 1, urgent: 0 });
    // A .txt whose audio is missing still counts for Asterisk.
    await writeFile(join(folderDir(spool, REF, 'INBOX'), 'msg0001.txt'), ';\n[message]\norigtime=1\n');
    assert.deepEqual(mwiCounts(await readMailbox(spool, REF)), { new: 2, old: 1, urgent: 0 });
  });
});

describe('mwiBackoffMs', () => {
  it('doubles from the first wait and stops at the cap', () => {
    const retry = { initialMs: 1_000, maxMs: 30_000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50, 1_000].map((n) => mwiBackoffMs(n, retry)), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  });
});
