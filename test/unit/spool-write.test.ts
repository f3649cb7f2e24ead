/**
 * Moving and removing voicemails in a real spool directory, with messages left the way Asterisk
 * leaves them (test/support/asterisk-spool.ts), including the states an interrupted change leaves.
 */
import { exited, firstLine } from '../support/child.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { chmod, cp, link, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UnsafeNameError } from '../../src/errors.js';
import { lockMarker, LockTimeoutError } from '../../src/spool/lock.js';
import { readMailbox } from '../../src/spool/read-mailbox.js';
import type { MailboxRef, SyncedSpoolFolder } from '../../src/spool/types.js';
import {
  FolderFullError,
  MessageNotFoundError,
  moveVoicemail,
  recoverOwnStaleLocks,
  removeVoicemail,
  SpoolInFluxError,
  SpoolRequestError,
  UnsafeSpoolEntryError,
} from '../../src/spool/write.js';
import { holdLock, leaveVoicemail } from '../support/asterisk-spool.js';

const WRITE_MODULE = pathToFileURL(new URL('../../src/spool/write.ts', import.meta.url).pathname).href;
const FORMATS = ['wav49', 'gsm', 'wav'];
const EXTS = ['WAV', 'gsm', 'txt', 'wav'];

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-spool-write-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Box {
  readonly spool: string;
  readonly ref: MailboxRef;
  readonly dir: string;
}

function freshBox(): Box {
  const spool = join(root, `spool-${++counter}`);
  const ref = { context: 'default', mailbox: '1000' };
  return { spool, ref, dir: join(spool, 'voicemail', 'default', '1000') };
}

/** Distinct audio per message, so a mix-up of files between messages shows. */
const audioFor = (tag: string): Buffer => Buffer.from(`audio of ${tag} `.repeat(40));

/** Leaves messages in INBOX (or Urgent); returns their msg_ids in order. */
async function leave(box: Box, tags: readonly string[], opts: { urgent?: boolean } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (const tag of tags) {
    const left = await leaveVoicemail(box.spool, box.ref, { formats: FORMATS, audio: audioFor(tag), callerid: tag, ...(opts.urgent ? { urgent: true } : {}) });
    ids.push(left.msgId);
  }
  return ids;
}

/** Puts messages into a folder Asterisk only reaches by moving (Old, Work, ...), via INBOX. */
async function seed(box: Box, folder: SyncedSpoolFolder, tags: readonly string[]): Promise<string[]> {
  const ids = await leave(box, tags);
  if (folder !== 'INBOX') {
    for (const id of ids) await moveVoicemail(box.spool, box.ref, { id, from: 'INBOX', to: folder, lockmode: 'lockfile' });
  }
  return ids;
}

/** `Folder/name` of every file in the mailbox (tmp/ included), with its inode. */
async function tree(box: Box): Promise<string[]> {
  const out: string[] = [];
  for (const folder of (await readdir(box.dir)).sort()) {
    const st = await lstat(join(box.dir, folder));
    if (!st.isDirectory()) continue;
    for (const name of (await readdir(join(box.dir, folder))).sort()) out.push(`${folder}/${name}#${(await lstat(join(box.dir, folder, name))).ino}`);
  }
  return out;
}

/** Folder → [msgnum, callerid] of its messages, as the reader sees them; asserts no problems. */
async function view(box: Box): Promise<Record<string, string[]>> {
  const snap = await readMailbox(box.spool, box.ref);
  assert.deepEqual(snap.problems, [], 'the reader finds nothing wrong');
  const out: Record<string, string[]> = {};
  for (const m of [...snap.messages].sort((a, b) => a.msgnum - b.msgnum)) {
    (out[m.folder] ??= []).push(`${m.msgnum}:${m.envelope.callerid}`);
    assert.deepEqual(m.audio.map((a) => a.ext), ['WAV', 'gsm', 'wav'], `${m.txtPath} has all its audio`);
    for (const a of m.audio) assert.deepEqual(await readFile(a.path), audioFor(m.envelope.callerid ?? ''), `${a.path} is its own audio`);
  }
  // Deleted/ is not a folder the reader looks at; the same checks by hand.
  const deleted = join(box.dir, 'Deleted');
  for (const name of await names(deleted)) {
    const m = /^msg(\d{4})\.txt$/.exec(name);
    if (!m) continue;
    const tag = /^callerid=(.*)$/m.exec(await readFile(join(deleted, name), 'utf8'))?.[1] ?? '';
    (out.Deleted ??= []).push(`${Number(m[1])}:${tag}`);
    for (const ext of ['WAV', 'gsm', 'wav']) assert.deepEqual(await readFile(join(deleted, `msg${m[1]}.${ext}`)), audioFor(tag), `Deleted/msg${m[1]}.${ext} is its own audio`);
  }
  return out;
}

/** Every message file with more than one name (leftovers of an interrupted move). */
async function multiplyLinked(box: Box): Promise<string[]> {
  return (await tree(box)).map((e) => e.split('#')[0] as string).filter((p) => lstatSync(join(box.dir, p)).nlink > 1);
}

const names = async (dir: string): Promise<string[]> => (existsSync(dir) ? (await readdir(dir)).sort() : []);
const files = (n: number): string[] => EXTS.map((e) => `msg${String(n).padStart(4, '0')}.${e}`);

describe('moveVoicemail', () => {
  it('INBOX to Old: every sibling moves (WAV, gsm, wav, txt last), the same files, .txt 0666; both folders contiguous', async () => {
    const box = freshBox();
    const [, idB] = await leave(box, ['A', 'B', 'C']);
    const inbox = join(box.dir, 'INBOX');
    const before = new Map(EXTS.map((e) => [e, lstatSync(join(inbox, `msg0001.${e}`)).ino]));
    await chmod(join(inbox, 'msg0001.txt'), 0o644); // as if someone had changed it
    const res = await moveVoicemail(box.spool, box.ref, { id: idB as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    assert.deepEqual(res, { msgnum: 0, alreadyDone: false, repairs: [] });
    assert.deepEqual(await names(join(box.dir, 'Old')), files(0));
    for (const e of EXTS) assert.equal(lstatSync(join(box.dir, 'Old', `msg0000.${e}`)).ino, before.get(e), `${e} is the same file (renamed, not copied)`);
    assert.equal((await stat(join(box.dir, 'Old', 'msg0000.txt'))).mode & 0o7777, 0o666);
    assert.deepEqual(await names(inbox), [...files(0), ...files(1)]);
    assert.deepEqual(await view(box), { INBOX: ['0:A', '1:C'], Old: ['0:B'] });
    assert.deepEqual(await multiplyLinked(box), []);
    assert.equal(existsSync(join(inbox, '.lock')) || existsSync(join(box.dir, 'Old', '.lock')), false);
  });

  it('Old to INBOX appends after the messages already there', async () => {
    const box = freshBox();
    const [idA] = await seed(box, 'Old', ['A', 'B']);
    await leave(box, ['C', 'D']);
    const res = await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'Old', to: 'INBOX', lockmode: 'lockfile' });
    assert.equal(res.msgnum, 2);
    assert.deepEqual(await view(box), { INBOX: ['0:C', '1:D', '2:A'], Old: ['0:B'] });
  });

  for (const to of ['Work', 'Family', 'Friends'] as const) {
    it(`INBOX to ${to}: the folder is created when missing`, async () => {
      const box = freshBox();
      const [idA] = await leave(box, ['A', 'B']);
      assert.equal(existsSync(join(box.dir, to)), false);
      const res = await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to, lockmode: 'lockfile' });
      assert.equal(res.msgnum, 0);
      assert.deepEqual(await view(box), { INBOX: ['0:B'], [to]: ['0:A'] });
      assert.equal((await stat(join(box.dir, to))).mode & 0o777, 0o777 & ~process.umask(), 'created like Asterisk: 0777 minus umask');
    });
  }

  it('Urgent to Old (a heard urgent message); the envelope is unchanged, flag=Urgent kept', async () => {
    const box = freshBox();
    await seed(box, 'Old', ['O1']);
    const [idU] = await leave(box, ['U1'], { urgent: true });
    const text = await readFile(join(box.dir, 'Urgent', 'msg0000.txt'));
    const res = await moveVoicemail(box.spool, box.ref, { id: idU as string, from: 'Urgent', to: 'Old', lockmode: 'lockfile' });
    assert.equal(res.msgnum, 1);
    assert.deepEqual(await readFile(join(box.dir, 'Old', 'msg0001.txt')), text);
    assert.deepEqual(await view(box), { Old: ['0:O1', '1:U1'] });
    assert.deepEqual(await names(join(box.dir, 'Urgent')), []);
  });

  it('is idempotent: asked again, it finds the message already in `to` and changes nothing', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A', 'B']);
    const req = { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' } as const;
    await moveVoicemail(box.spool, box.ref, req);
    const t = await tree(box);
    assert.deepEqual(await moveVoicemail(box.spool, box.ref, req), { msgnum: 0, alreadyDone: true, repairs: [] });
    assert.deepEqual(await tree(box), t);
  });

  it('looks past the parsed-envelope cache when a .txt was rewritten in place (same inode)', async () => {
    const box = freshBox();
    const [idA, idB] = await leave(box, ['A', 'B']);
    // The reader parses (and caches) both envelopes, as a reconcile does before it moves.
    assert.equal((await readMailbox(box.spool, box.ref)).messages.length, 2);
    // Then msg0000.txt gets B's msg_id, written into the same file (the inode stays).
    const txt0 = join(box.dir, 'INBOX', 'msg0000.txt');
    const txt1 = join(box.dir, 'INBOX', 'msg0001.txt');
    const before = (await stat(txt0)).ino;
    await writeFile(txt0, (await readFile(txt0, 'utf8')).replace(`msg_id=${idA as string}`, `msg_id=${idB as string}`));
    await writeFile(txt1, (await readFile(txt1, 'utf8')).replace(`msg_id=${idB as string}`, `msg_id=${idA as string}`));
    assert.equal((await stat(txt0)).ino, before);
    // Asked for A, the move must find it at msg0001 now, not at msg0000 where the cache had it.
    await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    // Read the files themselves: the reader would use the same cache.
    assert.match(await readFile(join(box.dir, 'Old', 'msg0000.txt'), 'utf8'), new RegExp(`msg_id=${idA as string}`));
    assert.match(await readFile(join(box.dir, 'INBOX', 'msg0000.txt'), 'utf8'), new RegExp(`msg_id=${idB as string}`));
  });

  it('a message in neither folder: MessageNotFoundError', async () => {
    const box = freshBox();
    await leave(box, ['A']);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: '1-00000000', from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), MessageNotFoundError);
  });

  it('a message in both folders (Asterisk copying it): SpoolInFluxError, nothing changed', async () => {
    const box = freshBox();
    const [idA] = await seed(box, 'Old', ['A']);
    await mkdir(join(box.dir, 'INBOX'), { recursive: true });
    for (const e of EXTS) await writeFile(join(box.dir, 'INBOX', `msg0000.${e}`), await readFile(join(box.dir, 'Old', `msg0000.${e}`)));
    const t = await tree(box);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), SpoolInFluxError);
    assert.deepEqual(await tree(box), t);
  });

  it('finds the message by id after Asterisk renumbered the folder between observation and lock', async () => {
    const box = freshBox();
    const [, , idC] = await leave(box, ['A', 'B', 'C']);
    const inbox = join(box.dir, 'INBOX');
    // Asterisk holds INBOX; meanwhile vmbridge has planned the move (C is msg0002) and waits.
    const held = await holdLock(inbox, 10_000);
    const moving = moveVoicemail(box.spool, box.ref, { id: idC as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    await waitFor(async () => {
      for (const n of await readdir(inbox)) if (n.startsWith('.lock-') && (await readFile(join(inbox, n), 'utf8').catch(() => '')).startsWith('vmbridge')) return true;
      return false;
    });
    // Under its lock Asterisk deletes A (.txt first) and closes the gap: B -> 0, C -> 1.
    await unlink(join(inbox, 'msg0000.txt'));
    for (const e of ['WAV', 'gsm', 'wav']) await unlink(join(inbox, `msg0000.${e}`));
    for (const [from, to] of [[1, 0], [2, 1]] as const) {
      for (const e of ['WAV', 'gsm', 'wav', 'txt']) await rename(join(inbox, `msg000${from}.${e}`), join(inbox, `msg000${to}.${e}`));
    }
    await held.release();
    const res = await moving;
    assert.equal(res.msgnum, 0);
    assert.deepEqual(await view(box), { INBOX: ['0:B'], Old: ['0:C'] });
  });

  it('the message moved by someone else meanwhile: success, nothing more changed', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    const inbox = join(box.dir, 'INBOX');
    const held = await holdLock(inbox, 10_000);
    const moving = moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    await waitFor(async () => (await readdir(inbox)).some((n) => n.startsWith('.lock-')));
    await mkdir(join(box.dir, 'Old'), { recursive: true });
    for (const e of ['WAV', 'gsm', 'wav', 'txt']) await rename(join(inbox, `msg0000.${e}`), join(box.dir, 'Old', `msg0000.${e}`));
    await held.release();
    assert.deepEqual(await moving, { msgnum: 0, alreadyDone: true, repairs: [] });
  });

  it('refuses when the destination has no room under maxmsg; nothing changed', async () => {
    const box = freshBox();
    await seed(box, 'Old', ['O1', 'O2']);
    const [idA] = await leave(box, ['A']);
    const t = await tree(box);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile', maxmsg: 2 }), (err: unknown) => {
      assert.ok(err instanceof FolderFullError);
      assert.equal(err.limit, 2);
      assert.match(err.message, /maxmsg=2/);
      return true;
    });
    assert.deepEqual(await tree(box), t);
    // With room it goes.
    assert.equal((await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile', maxmsg: 3 })).msgnum, 2);
  });

  it('refuses when the destination already uses number 9998, Asterisk\'s last; nothing changed', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    await mkdir(join(box.dir, 'Old'));
    await writeFile(join(box.dir, 'Old', 'msg9998.txt'), '[message]\norigtime=1\n');
    await writeFile(join(box.dir, 'Old', 'msg9998.wav'), 'x');
    const t = await tree(box);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile', maxmsg: 9999 }), FolderFullError);
    assert.deepEqual(await tree(box), t);
  });

  it('never follows a symbolic link: a linked audio file, folder or mailbox is refused, nothing changed', async () => {
    const box = freshBox();
    const [idA, idB] = await leave(box, ['A', 'B']);
    const outside = join(root, `outside-${counter}`);
    await mkdir(outside);
    await writeFile(join(outside, 'precious.wav'), 'precious');
    // An audio file that is a symbolic link.
    await unlink(join(box.dir, 'INBOX', 'msg0001.wav'));
    await symlink(join(outside, 'precious.wav'), join(box.dir, 'INBOX', 'msg0001.wav'));
    let t = await tree(box);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idB as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), UnsafeSpoolEntryError);
    await assert.rejects(removeVoicemail(box.spool, box.ref, { id: idA as string, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 0 }), UnsafeSpoolEntryError);
    assert.deepEqual((await tree(box)).filter((e) => !e.startsWith('Old/')), t.filter((e) => !e.startsWith('Old/')));
    assert.equal(await readFile(join(outside, 'precious.wav'), 'utf8'), 'precious');
    await unlink(join(box.dir, 'INBOX', 'msg0001.wav'));
    await writeFile(join(box.dir, 'INBOX', 'msg0001.wav'), audioFor('B'));
    // A destination folder that is a symbolic link.
    await rm(join(box.dir, 'Old'), { recursive: true, force: true });
    await symlink(outside, join(box.dir, 'Old'));
    t = await tree(box);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), UnsafeSpoolEntryError);
    assert.deepEqual(await tree(box), t);
    assert.deepEqual(await readdir(outside), ['precious.wav']);
    // A mailbox directory that is a symbolic link.
    const other = freshBox();
    await mkdir(join(other.dir, '..'), { recursive: true });
    await symlink(box.dir, other.dir);
    await assert.rejects(moveVoicemail(other.spool, other.ref, { id: idA as string, from: 'INBOX', to: 'Work', lockmode: 'lockfile' }), UnsafeSpoolEntryError);
    assert.deepEqual(await tree(box), t);
  });

  it('refuses unsafe names and nonsense requests before touching anything', async () => {
    const box = freshBox();
    await assert.rejects(moveVoicemail(box.spool, { context: '..', mailbox: '1000' }, { id: 'x', from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), UnsafeNameError);
    await assert.rejects(moveVoicemail(box.spool, { context: 'default', mailbox: 'a/b' }, { id: 'x', from: 'INBOX', to: 'Old', lockmode: 'lockfile' }), UnsafeNameError);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: 'x', from: 'INBOX', to: 'INBOX', lockmode: 'lockfile' }), SpoolRequestError);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: 'x', from: 'INBOX', to: 'Deleted' as SyncedSpoolFolder, lockmode: 'lockfile' }), SpoolRequestError);
    await assert.rejects(moveVoicemail(box.spool, box.ref, { id: 'x', from: 'INBOX', to: 'Old', lockmode: 'lockfile', maxmsg: -1 }), SpoolRequestError);
    await assert.rejects(removeVoicemail(box.spool, box.ref, { id: 'x', folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 1.5 }), SpoolRequestError);
    assert.equal(existsSync(box.spool), false);
  });

  it('a folder Asterisk keeps locked past the timeout: LockTimeoutError, nothing changed', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    await mkdir(join(box.dir, 'Old'));
    const held = await holdLock(join(box.dir, 'Old'), 5_000);
    try {
      const t = await tree(box);
      await assert.rejects(moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile', nestedLockTimeoutMs: 200 }), LockTimeoutError);
      assert.deepEqual(await tree(box), t);
    } finally {
      await held.release();
    }
  });

  it('gives the folders it creates to Asterisk\'s user (owner option)', { skip: process.getuid?.() === 0 ? false : 'needs root to chown' }, async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Family', lockmode: 'lockfile', owner: { uid: 4321, gid: 4322 } });
    const st = await stat(join(box.dir, 'Family'));
    assert.deepEqual([st.uid, st.gid], [4321, 4322]);
  });

  it('works under lockmode=flock too', { skip: existsSync('/usr/bin/flock') ? false : 'no flock(1)' }, async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A', 'B']);
    await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'flock' });
    assert.deepEqual(await view(box), { INBOX: ['0:B'], Old: ['0:A'] });
    assert.equal(existsSync(join(box.dir, 'INBOX', 'lock')) || existsSync(join(box.dir, 'Old', 'lock')), false);
  });
});

describe('removeVoicemail', () => {
  it('without backupdeleted: the files are deleted and the folder renumbered; a repeat is a no-op', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A', 'B', 'C']);
    const req = { id: idA as string, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 0 } as const;
    assert.deepEqual(await removeVoicemail(box.spool, box.ref, req), { removed: true, repairs: [] });
    assert.deepEqual(await names(join(box.dir, 'INBOX')), [...files(0), ...files(1)]);
    assert.deepEqual(await view(box), { INBOX: ['0:B', '1:C'] });
    assert.equal(existsSync(join(box.dir, 'Deleted')), false);
    const t = await tree(box);
    assert.deepEqual(await removeVoicemail(box.spool, box.ref, req), { removed: false, repairs: [] });
    assert.deepEqual(await tree(box), t);
  });

  it('with backupdeleted: into Deleted/, a FIFO that drops the oldest when full', async () => {
    const box = freshBox();
    const ids = await seed(box, 'Old', ['A', 'B', 'C']);
    const deleted = join(box.dir, 'Deleted');
    const results = [];
    for (const id of ids) results.push(await removeVoicemail(box.spool, box.ref, { id, folder: 'Old', lockmode: 'lockfile', backupDeleted: 2 }));
    assert.deepEqual(results.map((r) => r.deletedMsgnum), [0, 1, 1]);
    assert.deepEqual(await names(deleted), [...files(0), ...files(1)]);
    // B is now the oldest (msg0000), C the newest; A is gone for good.
    for (const [n, tag] of [[0, 'B'], [1, 'C']] as const) {
      assert.match(await readFile(join(deleted, `msg000${n}.txt`), 'utf8'), new RegExp(`^callerid=${tag}$`, 'm'));
      assert.deepEqual(await readFile(join(deleted, `msg000${n}.wav`)), audioFor(tag));
      assert.equal((await stat(join(deleted, `msg000${n}.txt`))).mode & 0o7777, 0o666);
    }
    assert.deepEqual(await names(join(box.dir, 'Old')), []);
    assert.deepEqual(await view(box), { Deleted: ['0:B', '1:C'] });
    assert.deepEqual(await multiplyLinked(box), []);
    // Again: nothing to do.
    assert.equal((await removeVoicemail(box.spool, box.ref, { id: ids[2] as string, folder: 'Old', lockmode: 'lockfile', backupDeleted: 2 })).removed, false);
  });

  it('renumbers the folder when the message was in the middle', async () => {
    const box = freshBox();
    const [, idB] = await leave(box, ['A', 'B', 'C', 'D']);
    await removeVoicemail(box.spool, box.ref, { id: idB as string, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 5 });
    assert.deepEqual(await view(box), { INBOX: ['0:A', '1:C', '2:D'], Deleted: ['0:B'] });
    assert.deepEqual(await names(join(box.dir, 'Deleted')), files(0));
  });
});

describe('interrupted changes', () => {
  /** The state a move INBOX msg0001 -> Old msg0000 leaves if it stops after linking some audio. */
  async function stoppedBeforeCommit(box: Box, exts: readonly string[]): Promise<void> {
    await mkdir(join(box.dir, 'Old'), { recursive: true });
    for (const e of exts) await link(join(box.dir, 'INBOX', `msg0001.${e}`), join(box.dir, 'Old', `msg0000.${e}`));
  }

  /** ...and if it stops after the .txt rename (the commit), before the old names are gone. */
  async function stoppedAfterCommit(box: Box): Promise<void> {
    await stoppedBeforeCommit(box, ['WAV', 'gsm', 'wav']);
    await rename(join(box.dir, 'INBOX', 'msg0001.txt'), join(box.dir, 'Old', 'msg0000.txt'));
    await unlink(join(box.dir, 'INBOX', 'msg0001.WAV'));
  }

  it('stopped before the commit: the message is whole where it was; the next move finishes cleanly', async () => {
    const box = freshBox();
    const [, idB] = await leave(box, ['A', 'B', 'C']);
    await stoppedBeforeCommit(box, ['WAV', 'gsm']);
    assert.deepEqual(await view(box), { INBOX: ['0:A', '1:B', '2:C'] }, 'observation: B still in INBOX, nothing in Old');
    const res = await moveVoicemail(box.spool, box.ref, { id: idB as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    assert.equal(res.msgnum, 0);
    assert.equal(res.repairs.length, 2, res.repairs.join('\n'));
    assert.deepEqual(await view(box), { INBOX: ['0:A', '1:C'], Old: ['0:B'] });
    assert.deepEqual(await multiplyLinked(box), []);
  });

  it('stopped after the commit: the message is whole at its new place; the next change tidies and renumbers', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A', 'B', 'C']);
    await stoppedAfterCommit(box);
    assert.deepEqual(await view(box), { INBOX: ['0:A', '2:C'], Old: ['0:B'] }, 'observation: B in Old with all its audio');
    const res = await removeVoicemail(box.spool, box.ref, { id: idA as string, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 0 });
    assert.equal(res.repairs.length, 2, res.repairs.join('\n'));
    assert.deepEqual(await view(box), { INBOX: ['0:C'], Old: ['0:B'] });
    assert.deepEqual(await multiplyLinked(box), []);
  });

  it('the same move asked again after a stop past the commit is recognised as done, and finished', async () => {
    const box = freshBox();
    const [, idB] = await leave(box, ['A', 'B', 'C']);
    await stoppedAfterCommit(box);
    const res = await moveVoicemail(box.spool, box.ref, { id: idB as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    assert.equal(res.alreadyDone, true);
    assert.equal(res.msgnum, 0);
    assert.equal(res.repairs.length, 2, res.repairs.join('\n'));
    assert.deepEqual(await view(box), { INBOX: ['0:A', '1:C'], Old: ['0:B'] });
    assert.deepEqual(await multiplyLinked(box), []);
  });

  it('start-up recovery repairs a folder left locked by a dead vmbridge before unlocking it', async () => {
    const box = freshBox();
    await leave(box, ['A', 'B', 'C']);
    await stoppedAfterCommit(box);
    const deadPid = await deadProcessPid();
    for (const f of ['INBOX', 'Old']) await writeFile(join(box.dir, f, '.lock'), lockMarker(hostname(), deadPid));
    const report = await recoverOwnStaleLocks(box.spool);
    assert.deepEqual([...report.removed].sort(), [join(box.dir, 'INBOX', '.lock'), join(box.dir, 'Old', '.lock')]);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(await multiplyLinked(box), [], 'leftover names are gone');
    assert.deepEqual(await view(box), { INBOX: ['0:A', '2:C'], Old: ['0:B'] }, 'no renumbering at start-up (Asterisk closes gaps itself)');
  });

  it('Asterisk saving a new message over the leftovers of a stopped move loses nothing', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    // A move INBOX -> Urgent stopped before its commit...
    await mkdir(join(box.dir, 'Urgent'), { recursive: true });
    for (const e of ['WAV', 'gsm', 'wav']) await link(join(box.dir, 'INBOX', `msg0000.${e}`), join(box.dir, 'Urgent', `msg0000.${e}`));
    // ...then Asterisk saves an urgent message: msg0000 to it, since no .txt is there.
    await leave(box, ['U'], { urgent: true });
    assert.deepEqual(await view(box), { INBOX: ['0:A'], Urgent: ['0:U'] });
    await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Urgent', lockmode: 'lockfile' });
    assert.deepEqual(await view(box), { Urgent: ['0:U', '1:A'] });
    assert.deepEqual(await multiplyLinked(box), []);
  });

  it('audio that belongs to no message and is in the way goes to tmp/, not to the bin', async () => {
    const box = freshBox();
    const [idA] = await leave(box, ['A']);
    await mkdir(join(box.dir, 'Old'), { recursive: true });
    await writeFile(join(box.dir, 'Old', 'msg0000.wav'), 'orphan audio');
    const res = await moveVoicemail(box.spool, box.ref, { id: idA as string, from: 'INBOX', to: 'Old', lockmode: 'lockfile' });
    assert.equal(res.msgnum, 0);
    assert.equal(res.repairs.length, 1);
    assert.deepEqual(await view(box), { Old: ['0:A'] });
    const kept = (await readdir(join(box.dir, 'tmp'))).filter((n) => n.startsWith('vmbridge-orphan-Old-msg0000-'));
    assert.equal(kept.length, 1);
    assert.equal(await readFile(join(box.dir, 'tmp', kept[0] as string), 'utf8'), 'orphan audio');
  });

  /**
   * mbsync's test: run the change once to count its steps (every link, rename and unlink, the lock's
   * included), then for every step k a run that is killed (SIGKILL) just before step k, followed by
   * start-up recovery, checks, and a resumed run that must reach the same end as an uninterrupted one.
   */
  async function killAtEveryStep(
    setup: (box: Box) => Promise<Record<string, string>>,
    op: (ids: Record<string, string>) => { kind: 'move' | 'remove'; opts: object },
    expected: Record<string, string[]>,
    mayVanish: readonly string[] = [],
  ): Promise<number> {
    const template = freshBox();
    const ids = await setup(template);
    const request = op(ids);
    const script = join(root, `crasher-${counter}.mts`);
    await writeFile(
      script,
      `import fs from 'node:fs';\n` +
        `import { syncBuiltinESMExports } from 'node:module';\n` +
        `const [spool, limitText, request] = process.argv.slice(2);\n` +
        `const limit = Number(limitText);\n` +
        `let steps = 0;\n` +
        `for (const name of ['linkSync', 'renameSync', 'unlinkSync']) {\n` +
        `  const original = fs[name];\n` +
        `  fs[name] = (...args) => { if (++steps > limit) process.kill(process.pid, 'SIGKILL'); return original(...args); };\n` +
        `}\n` +
        `syncBuiltinESMExports();\n` +
        `const { moveVoicemail, removeVoicemail } = await import(${JSON.stringify(WRITE_MODULE)});\n` +
        `const { kind, opts } = JSON.parse(request);\n` +
        `const ref = { context: 'default', mailbox: '1000' };\n` +
        `await (kind === 'move' ? moveVoicemail(spool, ref, opts) : removeVoicemail(spool, ref, opts));\n` +
        `process.stdout.write('done ' + steps + '\\n');\n`,
    );
    const run = async (box: Box, limit: number): Promise<string | undefined> => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, box.spool, String(limit), JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const line = firstLine(child).catch(() => undefined);
      await exited(child);
      return line;
    };
    const copyOf = async (): Promise<Box> => {
      const box = freshBox();
      await cp(template.spool, box.spool, { recursive: true });
      return box;
    };

    const whole = await copyOf();
    const done = await run(whole, Number.MAX_SAFE_INTEGER);
    const steps = Number(/^done (\d+)$/.exec(done ?? '')?.[1]);
    assert.ok(steps > 10, `an uninterrupted run counts its steps (${done})`);
    assert.deepEqual(await view(whole), expected);

    const allTags = Object.values(expected).flat().map((e) => e.split(':')[1] as string);
    const mustSee = allTags.filter((t) => !mayVanish.includes(t)).sort();
    const check = async (k: number): Promise<void> => {
      const box = await copyOf();
      assert.equal(await run(box, k), undefined, `killed before step ${k + 1}`);
      const report = await recoverOwnStaleLocks(box.spool);
      assert.deepEqual(report.problems, [], `step ${k}`);
      assert.deepEqual(await multiplyLinked(box), [], `step ${k}: leftovers were only in folders it had locked, and were tidied`);
      const seen = Object.values(await view(box)).flat().map((e) => e.split(':')[1] as string);
      assert.equal(new Set(seen).size, seen.length, `step ${k}: no message twice`);
      assert.deepEqual(seen.filter((t) => !mayVanish.includes(t)).sort(), mustSee, `step ${k}: every message still there, each with all its own audio`);
      const locks = (await tree(box)).filter((e) => /\/\.lock/.test(e));
      assert.deepEqual(locks, [], `step ${k}: no lock left`);
      const { kind, opts } = request;
      const resume = { ...opts, lockmode: 'lockfile' } as Parameters<typeof moveVoicemail>[2] & Parameters<typeof removeVoicemail>[2];
      await (kind === 'move' ? moveVoicemail(box.spool, box.ref, resume) : removeVoicemail(box.spool, box.ref, resume));
      assert.deepEqual(await view(box), expected, `step ${k}: resumed, the same end as without the interruption`);
      assert.deepEqual(await multiplyLinked(box), []);
    };
    const ks = Array.from({ length: steps }, (_, k) => k);
    for (let i = 0; i < ks.length; i += 8) await Promise.all(ks.slice(i, i + 8).map(check));
    return steps;
  }

  it('a move killed before any of its steps: recovered, and resumed to the same end', async () => {
    const steps = await killAtEveryStep(
      async (box) => {
        await seed(box, 'Old', ['O']);
        const [a, b, c] = await leave(box, ['A', 'B', 'C']);
        return { a: a as string, b: b as string, c: c as string };
      },
      (ids) => ({ kind: 'move', opts: { id: ids.b, from: 'INBOX', to: 'Old', lockmode: 'lockfile' } }),
      { INBOX: ['0:A', '1:C'], Old: ['0:O', '1:B'] },
    );
    assert.ok(steps >= 20, `${steps} steps`);
  });

  it('a remove into a full Deleted/ killed before any of its steps: recovered, and resumed to the same end', async () => {
    await killAtEveryStep(
      async (box) => {
        const [d] = await leave(box, ['D']);
        await removeVoicemail(box.spool, box.ref, { id: d as string, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 1 });
        const [a, b, c] = await leave(box, ['A', 'B', 'C']);
        return { a: a as string, b: b as string, c: c as string };
      },
      (ids) => ({ kind: 'remove', opts: { id: ids.a, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 1 } }),
      { INBOX: ['0:B', '1:C'], Deleted: ['0:A'] },
      ['D'], // the oldest in Deleted/: the FIFO drops it by design
    );
  });

  it('a delete (no backupdeleted) killed before any of its steps: recovered, and resumed to the same end', async () => {
    await killAtEveryStep(
      async (box) => {
        const [a, b, c] = await leave(box, ['A', 'B', 'C']);
        return { a: a as string, b: b as string, c: c as string };
      },
      (ids) => ({ kind: 'remove', opts: { id: ids.a, folder: 'INBOX', lockmode: 'lockfile', backupDeleted: 0 } }),
      { INBOX: ['0:B', '1:C'] },
      ['A'], // deleted on purpose
    );
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}



/** The PID of a process that has just ended. */
async function deadProcessPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await exited(child);
  return child.pid as number;
}
