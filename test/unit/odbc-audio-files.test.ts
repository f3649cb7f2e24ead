/**
 * The audio files of odbc_audio_on_disk=yes rows, without a database: what a row change does to
 * them before and after its commit, what undo leaves, and what the tidying after an interruption
 * removes and keeps (src/store/odbc/audio-files.ts; with real databases in store-odbc.test.ts).
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SpoolAudio } from '../../src/store/odbc/audio-files.js';
import { UnsafeSpoolEntryError } from '../../src/spool/write.js';

describe('ODBC audio files on disk', () => {
  let spool: string;
  let audio: SpoolAudio;
  let n = 0;
  const fresh = async (files: Record<string, Record<string, string>>): Promise<{ ref: { context: string; mailbox: string }; box: string }> => {
    const ref = { context: 'default', mailbox: `${100 + n++}` };
    const box = join(spool, 'voicemail', ref.context, ref.mailbox);
    for (const [folder, names] of Object.entries(files)) {
      await mkdir(join(box, folder), { recursive: true });
      for (const [name, text] of Object.entries(names)) await writeFile(join(box, folder, name), text);
    }
    return { ref, box };
  };
  const contents = async (dir: string): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) out[name] = await readFile(join(dir, name), 'utf8');
    return out;
  };

  before(async () => {
    spool = await mkdtemp(join(tmpdir(), 'vmbridge-odbc-audio-'));
    audio = new SpoolAudio(spool);
  });
  after(async () => {
    await rm(spool, { recursive: true, force: true });
  });

  it('a relocation links every format before the commit and removes the old names after it; undone, the new names go', async () => {
    const { ref, box } = await fresh({ INBOX: { 'msg0000.wav': 'a', 'msg0000.WAV': 'A', 'msg0000.gsm': 'g', 'msg0000.txt': 'row copy' }, Old: {} });
    const undone = audio.step(ref);
    undone.relocate({ folder: 'INBOX', msgnum: 0 }, { folder: 'Old', msgnum: 3 });
    assert.deepEqual(Object.keys(await contents(join(box, 'Old'))), ['msg0003.WAV', 'msg0003.gsm', 'msg0003.wav']);
    undone.undo();
    assert.deepEqual(await contents(join(box, 'Old')), {});
    assert.equal((await lstat(join(box, 'INBOX', 'msg0000.wav'))).nlink, 1);

    const step = audio.step(ref);
    step.relocate({ folder: 'INBOX', msgnum: 0 }, { folder: 'Old', msgnum: 3 });
    assert.equal((await lstat(join(box, 'INBOX', 'msg0000.wav'))).nlink, 2, 'before the commit both names are there');
    step.committed();
    assert.deepEqual(await contents(join(box, 'Old')), { 'msg0003.WAV': 'A', 'msg0003.gsm': 'g', 'msg0003.wav': 'a' });
    assert.deepEqual(await contents(join(box, 'INBOX')), { 'msg0000.txt': 'row copy' }, 'the .txt is Asterisk\'s copy of the row and is left alone');
  });

  it('a deletion keeps the files until its commit; undone, nothing is lost', async () => {
    const { ref, box } = await fresh({ INBOX: { 'msg0001.wav': 'b', 'msg0001.gsm': 'g' } });
    const undone = audio.step(ref);
    undone.discard({ folder: 'INBOX', msgnum: 1 });
    undone.undo();
    assert.deepEqual(await contents(join(box, 'INBOX')), { 'msg0001.gsm': 'g', 'msg0001.wav': 'b' });
    const step = audio.step(ref);
    step.discard({ folder: 'INBOX', msgnum: 1 });
    assert.deepEqual(Object.keys(await contents(join(box, 'INBOX'))), ['.vmbridge-deleted-msg0001.gsm', '.vmbridge-deleted-msg0001.wav', 'msg0001.gsm', 'msg0001.wav']);
    step.committed();
    assert.deepEqual(await contents(join(box, 'INBOX')), {});
  });

  it('tidying removes second names at numbers without a row and deletion leftovers, and keeps rows\' files and audio of no known message', async () => {
    const { ref, box } = await fresh({ Old: { 'msg0000.wav': 'a', 'msg0002.wav': 'orphan' } });
    const inbox = join(box, 'INBOX');
    await mkdir(inbox);
    // A move stopped before its commit (second name in Old), a deletion stopped after it (its row gone).
    const moved = audio.step(ref);
    await writeFile(join(inbox, 'msg0000.wav'), 'x');
    moved.relocate({ folder: 'INBOX', msgnum: 0 }, { folder: 'Old', msgnum: 1 });
    await writeFile(join(inbox, 'msg0001.wav'), 'y');
    audio.step(ref).discard({ folder: 'INBOX', msgnum: 1 });
    const oldRepairs = audio.tidy(ref, 'Old', new Set([0]));
    assert.deepEqual(await contents(join(box, 'Old')), { 'msg0000.wav': 'a', 'msg0002.wav': 'orphan' });
    assert.equal(oldRepairs.length, 1, oldRepairs.join('\n'));
    const inboxRepairs = audio.tidy(ref, 'INBOX', new Set([0]));
    assert.deepEqual(await contents(inbox), { 'msg0000.wav': 'x' }, 'the row at 0 keeps its file; the deleted row\'s names go');
    assert.equal(inboxRepairs.length, 2, inboxRepairs.join('\n'));
  });

  it('audio of no known message at the number a row is given is moved to tmp/, never overwritten', async () => {
    const { ref, box } = await fresh({ INBOX: { 'msg0000.wav': 'a' }, Work: { 'msg0000.wav': 'nobody\'s' } });
    const step = audio.step(ref);
    step.relocate({ folder: 'INBOX', msgnum: 0 }, { folder: 'Work', msgnum: 0 });
    step.committed();
    assert.deepEqual(await contents(join(box, 'Work')), { 'msg0000.wav': 'a' });
    const kept = Object.entries(await contents(join(box, 'tmp')));
    assert.equal(kept.length, 1);
    assert.match(kept[0]![0], /^vmbridge-orphan-Work-msg0000-[0-9a-f]{8}\.wav$/);
    assert.equal(kept[0]![1], 'nobody\'s');
    assert.ok(step.repairs.some((r) => r.includes('moved to')), step.repairs.join('\n'));
  });

  it('a symbolic link among the files or in place of a folder is refused before anything is changed', async () => {
    const { ref, box } = await fresh({ INBOX: { 'msg0000.wav': 'a' } });
    const outside = await mkdtemp(join(tmpdir(), 'vmbridge-outside-'));
    try {
      await symlink(join(outside, 'x.gsm'), join(box, 'INBOX', 'msg0000.gsm'));
      assert.throws(() => audio.step(ref).relocate({ folder: 'INBOX', msgnum: 0 }, { folder: 'Old', msgnum: 0 }), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === join(box, 'INBOX', 'msg0000.gsm'));
      await symlink(outside, join(box, 'Work'));
      await assert.rejects(audio.prepare(ref, 'Work'), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === join(box, 'Work'));
      assert.deepEqual(await readdir(outside), []);
      assert.deepEqual((await readdir(join(box, 'INBOX'))).sort(), ['msg0000.gsm', 'msg0000.wav']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});
