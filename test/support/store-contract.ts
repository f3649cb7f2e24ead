/**
 * The contract every voicemail store passes (src/store/types.ts). Each store's test file gives a
 * fixture that writes and changes messages the way Asterisk does for that storage, and calls
 * storeContract(). The same assertions run against the file spool and against ODBC.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MailboxRef, SpoolSnapshot, SyncedSpoolFolder } from '../../src/spool/types.js';
import type { VoicemailStore } from '../../src/store/types.js';
import { waitFor } from './wait.js';

export interface StoreFixture {
  readonly store: VoicemailStore;
  /** Leaves a new voicemail as app_voicemail does for this storage; returns its msg_id. */
  leave(ref: MailboxRef, opts: { readonly audio: Buffer; readonly urgent?: boolean }): Promise<string>;
  /** VoiceMailMain saving message `msgnum` of `from` to `to` (copy to the end, renumber `from`). */
  asteriskMove(ref: MailboxRef, from: SyncedSpoolFolder, msgnum: number, to: SyncedSpoolFolder): Promise<void>;
  /** Removes message `msgnum` without renumbering, as an interrupted change leaves a folder. */
  leaveGap(ref: MailboxRef, folder: SyncedSpoolFolder, msgnum: number): Promise<void>;
  close(): Promise<void>;
}

/** A small PCM WAV whose data is `text`: every store accepts it as a recording. */
export function wavOf(text: string): Buffer {
  const data = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

const textOf = (wav: Buffer): string => wav.subarray(44).toString('utf8');

const byFolder = (s: SpoolSnapshot, folder: string): { id: string; msgnum: number }[] =>
  s.messages.filter((m) => m.folder === folder).map((m) => ({ id: m.id, msgnum: m.msgnum })).sort((a, b) => a.msgnum - b.msgnum);

export function storeContract(name: string, make: () => Promise<StoreFixture>): void {
  describe(`voicemail store contract: ${name}`, () => {
    let f: StoreFixture;
    let n = 0;
    // Each test gets a mailbox of its own, so the tests do not depend on each other's order.
    const freshBox = (): MailboxRef => ({ context: 'contract', mailbox: `${2000 + n++}` });
    before(async () => {
      f = await make();
    });
    after(async () => {
      await f.store.close();
      await f.close();
    });

    it('lists the mailboxes that hold voicemail', async () => {
      const a = freshBox();
      const b = freshBox();
      await f.leave(a, { audio: wavOf('a') });
      await f.leave(b, { audio: wavOf('b') });
      const { refs } = await f.store.listMailboxes();
      const keys = refs.map((r) => `${r.mailbox}@${r.context}`);
      assert.ok(keys.includes(`${a.mailbox}@contract`) && keys.includes(`${b.mailbox}@contract`), `listed: ${keys.join(', ')}`);
    });

    it('reads messages with identity, folder, number, envelope and audio', async () => {
      const ref = freshBox();
      const first = await f.leave(ref, { audio: wavOf('first recording') });
      const urgent = await f.leave(ref, { audio: wavOf('urgent recording'), urgent: true });
      const s = await f.store.readMailbox(ref);
      assert.equal(s.settled, true);
      assert.deepEqual(byFolder(s, 'INBOX'), [{ id: first, msgnum: 0 }]);
      assert.deepEqual(byFolder(s, 'Urgent'), [{ id: urgent, msgnum: 0 }]);
      const m = s.messages.find((x) => x.id === first)!;
      assert.equal(m.envelope.msgId, first);
      assert.equal(typeof m.envelope.origtime, 'number');
      assert.ok(m.audio.length >= 1, 'at least one audio file');
      assert.equal(textOf(await f.store.readAudio(ref, m.audio[0]!.path)), 'first recording');
    });

    it('an empty or unknown mailbox reads as settled and empty', async () => {
      const s = await f.store.readMailbox(freshBox());
      assert.equal(s.settled, true);
      assert.equal(s.messages.length, 0);
    });

    it('moves a message to the end of another folder and renumbers the source; a repeat is already done', async () => {
      const ref = freshBox();
      const ids = [await f.leave(ref, { audio: wavOf('0') }), await f.leave(ref, { audio: wavOf('1') }), await f.leave(ref, { audio: wavOf('2') })];
      await f.asteriskMove(ref, 'INBOX', 0, 'Old');
      const moved = await f.store.move({ ref }, ids[1]!, 'INBOX', 'Old');
      assert.deepEqual({ done: moved.done, alreadyDone: moved.done && moved.alreadyDone }, { done: true, alreadyDone: false });
      const s = await f.store.readMailbox(ref);
      assert.deepEqual(byFolder(s, 'INBOX'), [{ id: ids[2], msgnum: 0 }]);
      assert.deepEqual(byFolder(s, 'Old'), [{ id: ids[0], msgnum: 0 }, { id: ids[1], msgnum: 1 }]);
      const again = await f.store.move({ ref }, ids[1]!, 'INBOX', 'Old');
      assert.deepEqual({ done: again.done, alreadyDone: again.done && again.alreadyDone }, { done: true, alreadyDone: true });
      const m = (await f.store.readMailbox(ref)).messages.find((x) => x.id === ids[1])!;
      assert.equal(textOf(await f.store.readAudio(ref, m.audio[0]!.path)), '1', 'the audio moved with it');
    });

    it('refuses a move into a full folder and changes nothing', async () => {
      const ref = freshBox();
      const a = await f.leave(ref, { audio: wavOf('a') });
      const b = await f.leave(ref, { audio: wavOf('b') });
      await f.asteriskMove(ref, 'INBOX', 0, 'Work');
      const out = await f.store.move({ ref, maxmsg: 1 }, b, 'INBOX', 'Work');
      assert.equal(out.done, false);
      const s = await f.store.readMailbox(ref);
      assert.deepEqual(byFolder(s, 'Work'), [{ id: a, msgnum: 0 }]);
      assert.deepEqual(byFolder(s, 'INBOX'), [{ id: b, msgnum: 0 }]);
    });

    it('removes a message and renumbers; a repeat is already done', async () => {
      const ref = freshBox();
      const ids = [await f.leave(ref, { audio: wavOf('0') }), await f.leave(ref, { audio: wavOf('1') })];
      const out = await f.store.remove({ ref }, ids[0]!, 'INBOX');
      assert.deepEqual({ done: out.done, alreadyDone: out.done && out.alreadyDone }, { done: true, alreadyDone: false });
      assert.deepEqual(byFolder(await f.store.readMailbox(ref), 'INBOX'), [{ id: ids[1], msgnum: 0 }]);
      const again = await f.store.remove({ ref }, ids[0]!, 'INBOX');
      assert.deepEqual({ done: again.done, alreadyDone: again.done && again.alreadyDone }, { done: true, alreadyDone: true });
      await f.store.remove({ ref, backupDeleted: 5 }, ids[1]!, 'INBOX');
      // Kept in Deleted (not a synced folder): gone from the folders the store shows.
      assert.deepEqual(byFolder(await f.store.readMailbox(ref), 'INBOX'), []);
    });

    it('renumbers a folder with a gap down to 0, 1, 2 and keeps each message whole', async () => {
      const ref = freshBox();
      const ids = [await f.leave(ref, { audio: wavOf('0') }), await f.leave(ref, { audio: wavOf('1') }), await f.leave(ref, { audio: wavOf('2') })];
      await f.leaveGap(ref, 'INBOX', 1);
      assert.deepEqual(byFolder(await f.store.readMailbox(ref), 'INBOX'), [{ id: ids[0], msgnum: 0 }, { id: ids[2], msgnum: 2 }]);
      const changes = await f.store.renumber(ref, 'INBOX');
      assert.ok(changes.length > 0, 'it says what it changed');
      const s = await f.store.readMailbox(ref);
      assert.deepEqual(byFolder(s, 'INBOX'), [{ id: ids[0], msgnum: 0 }, { id: ids[2], msgnum: 1 }]);
      const m = s.messages.find((x) => x.id === ids[2])!;
      assert.equal(textOf(await f.store.readAudio(ref, m.audio[0]!.path)), '2');
      assert.deepEqual(await f.store.renumber(ref, 'INBOX'), [], 'a dense folder is left alone');
    });

    it('the folder lock is exclusive: a second holder enters only after the first left', async () => {
      const ref = freshBox();
      await f.leave(ref, { audio: wavOf('x') });
      const events: string[] = [];
      let entered!: () => void;
      const firstIn = new Promise<void>((r) => (entered = r));
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = f.store.withFolderLock(ref, 'INBOX', async () => {
        events.push('first in');
        entered();
        await held;
        events.push('first out');
      });
      await firstIn;
      const second = f.store.withFolderLock(ref, 'INBOX', () => {
        events.push('second in');
      });
      // The second must not get in while the first holds the lock, however long that is.
      await new Promise((r) => setTimeout(r, 200));
      release();
      await Promise.all([first, second]);
      assert.deepEqual(events, ['first in', 'first out', 'second in']);
    });

    it('tells the watcher which mailbox changed', async () => {
      const ref = freshBox();
      await f.leave(ref, { audio: wavOf('before') });
      const seen: string[] = [];
      const watcher = f.store.watch((r) => seen.push(`${r.mailbox}@${r.context}`));
      try {
        await watcher.ready;
        await f.leave(ref, { audio: wavOf('after') });
        await waitFor('a change event for the mailbox', () => seen.includes(`${ref.mailbox}@contract`), { timeoutMs: 10_000 });
      } finally {
        watcher.close();
      }
    });
  });
}
