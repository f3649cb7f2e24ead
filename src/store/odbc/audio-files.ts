/**
 * The audio files of the table's rows when voicemail.conf has `odbc_audio_on_disk=yes`: the row's
 * `recording` holds `AUDMAGIC` and the recordings are `<Folder>/msgNNNN.<ext>` in the mailbox's
 * spool folder, one per format (wav, WAV, gsm, ...). app_voicemail moves them with the rows: its
 * ODBC COPY copies every format's file, RENAME renames them and DELETE deletes them, each right
 * after its SQL statement, and a row's `.txt` there is only a copy of the row written for playing.
 *
 * vmbridge changes them inside the transaction of the row's change, in an order a crash cannot turn
 * into a row without its audio: before the commit each file is hard-linked to its new name (for a
 * deletion, to a `.vmbridge-deleted-` name beside it), and only after the commit are the old names
 * removed. A hard link, not a copy, so that a second name is recognisable as one (its link count). At every moment every row has all its audio under its own number; what an interruption
 * leaves is a second name of a file, either a `msgNNNN` name at a number without a row, or a
 * `.vmbridge-deleted-` name. The folder's next change removes both (`tidy`). A file at a number
 * without a row that has no other name is audio of no known message (Asterisk failed to store its
 * row, say): it is never deleted, and is moved to `<mailbox>/tmp/` when a row needs its number.
 *
 * Paths are built from checked names only (mailboxDir, the fixed folder names, numbers, and
 * extensions of letters and digits), and a symbolic link below `voicemail/` is never followed: a
 * folder or audio file that is one is refused, naming it.
 *
 * The calls under the folder lock are synchronous, as in src/spool/write.ts: they cannot queue
 * behind other work on libuv's thread pool and stretch the hold.
 */
import { randomBytes } from 'node:crypto';
import { constants, linkSync, readdirSync, renameSync, unlinkSync, type Dirent, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mailboxDir } from '../../spool/names.js';
import { DIR_MODE, ownerIn, type SpoolOwner, type SpoolOwnership } from '../../spool/ownership.js';
import { isSyncedSpoolFolder, type MailboxRef, type SyncedSpoolFolder } from '../../spool/types.js';
import { checkRealDir, ensureFolder, ensureFolderSync, linkHint, MAX_MSGNUM, SpoolRequestError, SpoolWriteError, UnsafeSpoolEntryError } from '../../spool/write.js';
import { errText, errnoOf, lstatOrUndefined, unlinkQuietly } from '../../spool/fs-quiet.js';

/** The folders whose rows vmbridge changes: the synced ones, and Deleted for backupdeleted. */
export type OdbcFolder = SyncedSpoolFolder | 'Deleted';

/** One message's place: its folder and number. */
export interface AudioPlace {
  readonly folder: OdbcFolder;
  readonly msgnum: number;
}

/** A folder's audio files by message number. */
export interface FolderAudio {
  readonly names: ReadonlyMap<number, readonly string[]>;
  /** Numbers with an entry that is not a regular file, and that entry's path. */
  readonly unsafe: ReadonlyMap<number, { readonly path: string; readonly what: string }>;
  /** `.vmbridge-deleted-` names an interrupted deletion left (regular files only). */
  readonly trash: readonly string[];
}

const AUDIO_FILE = /^msg(\d{4})\.([A-Za-z0-9]+)$/;
/** The second name a deletion gives a file before its commit; leading dot: no msgNNNN name to anyone. */
const TRASH_PREFIX = '.vmbridge-deleted-';
const readFlags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export const msgName = (n: number, ext: string): string => `msg${String(n).padStart(4, '0')}.${ext}`;
const extOf = (name: string): string => name.slice(name.indexOf('.') + 1);

function checkFolder(folder: string): asserts folder is OdbcFolder {
  if (!isSyncedSpoolFolder(folder) && folder !== 'Deleted') throw new SpoolRequestError(`${JSON.stringify(folder)} is not a folder vmbridge changes (INBOX, Urgent, Old, Work, Family, Friends, Deleted)`);
}

function checkMsgnum(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_MSGNUM) throw new SpoolRequestError(`${String(n)} is not a message number (0-${MAX_MSGNUM})`);
}

/** Where a mailbox's audio is, as vmbridge sees the spool. */
export class SpoolAudio {
  constructor(private readonly spoolDir: string, private readonly ownership?: SpoolOwnership) {}

  /** `<spool>/voicemail/<context>/<mailbox>`, its names checked. */
  mailbox(ref: MailboxRef): string {
    return mailboxDir(this.spoolDir, ref);
  }

  folder(ref: MailboxRef, folder: OdbcFolder): string {
    checkFolder(folder);
    return join(this.mailbox(ref), folder);
  }

  /**
   * Makes the folder exist, as Asterisk does before it locks it, giving what is created to
   * Asterisk's user, and refuses a symbolic link in its place or in the mailbox's or context's.
   */
  async prepare(ref: MailboxRef, folder: OdbcFolder): Promise<string> {
    const dir = this.folder(ref, folder);
    const box = dirname(dir);
    const owner = ownerIn(box, this.ownership);
    const root = dirname(dirname(box));
    // voicemail/ itself is the installation's choice (a link to another disk is fine); below it, nothing is followed.
    const made = await mkdir(root, { recursive: true, mode: DIR_MODE });
    if (made !== undefined && owner) await giveAwayFrom(made, root, owner);
    for (const d of [dirname(box), box, dir]) await ensureFolder(d, owner);
    return dir;
  }

  /** The folder's audio; a folder that is not there has none. */
  async list(ref: MailboxRef, folder: OdbcFolder): Promise<FolderAudio> {
    const dir = this.folder(ref, folder);
    if (!(await realDirsAsync(dir))) return emptyAudio();
    try {
      return toFolderAudio(dir, await readdir(dir, { withFileTypes: true }));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return emptyAudio();
      throw new SpoolWriteError(dir, `cannot be listed: ${errText(err)}`, { cause: err });
    }
  }

  /**
   * Opens one audio file for reading without following a link. Undefined when it is not there.
   * The caller checks the row again after this: then the file it holds is that row's.
   */
  async openAudio(ref: MailboxRef, at: AudioPlace, ext: string): Promise<FileHandle | undefined> {
    checkMsgnum(at.msgnum);
    if (!/^[A-Za-z0-9]+$/.test(ext)) throw new SpoolRequestError(`${JSON.stringify(ext)} is not an audio file extension`);
    const dir = this.folder(ref, at.folder);
    if (!(await realDirsAsync(dir))) return undefined;
    const path = join(dir, msgName(at.msgnum, ext));
    let fh: FileHandle;
    try {
      fh = await open(path, readFlags);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      if (errnoOf(err) === 'ELOOP') throw new UnsafeSpoolEntryError(path, 'is a symbolic link');
      throw new SpoolWriteError(path, `cannot be opened: ${errText(err)}`, { cause: err });
    }
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new UnsafeSpoolEntryError(path, 'is not a regular file');
    }
    return fh;
  }

  /** A step of one row change in the mailbox (see AudioStep). */
  step(ref: MailboxRef): AudioStep {
    const box = this.mailbox(ref);
    return new AudioStep(box, ownerIn(box, this.ownership));
  }

  /**
   * After an interruption: removes the second names left in the folder (a `msgNNNN` file at a
   * number that has no row, when the file has another name; then `.vmbridge-deleted-` names).
   * `rows` are the folder's numbers in the table; the caller holds the folder's lock.
   */
  tidy(ref: MailboxRef, folder: OdbcFolder, rows: ReadonlySet<number>): string[] {
    const dir = this.folder(ref, folder);
    if (!realDirsSync(dir)) return [];
    const audio = listSync(dir);
    const repairs: string[] = [];
    for (const [n, names] of audio.names) {
      if (rows.has(n)) continue;
      for (const name of names) {
        const path = join(dir, name);
        const st = lstatOrUndefined(path);
        if (st?.isFile() && st.nlink >= 2 && unlinkQuietly(path)) repairs.push(`${path}: removed a second name an interrupted change left (the audio is kept under its other name)`);
      }
    }
    // Second names first: a deletion's old name and its .vmbridge-deleted- name are one file, and
    // taking the latter first would leave the former as audio of no known message.
    for (const name of audio.trash) {
      const path = join(dir, name);
      if (unlinkQuietly(path)) repairs.push(`${path}: removed what an interrupted deletion left`);
    }
    return repairs;
  }
}

/**
 * The audio files of one row change, made with the row's statements in one transaction:
 * `relocate` and `discard` before the commit (new names only), `committed` after it (old names
 * go), or `undo` when the transaction fails before its commit.
 */
export class AudioStep {
  readonly repairs: string[] = [];
  private readonly made: string[] = [];
  /** Names to remove after the commit; `then` only once `name` is gone (its second name). */
  private readonly obsolete: { readonly name: string; readonly then?: string }[] = [];

  constructor(private readonly box: string, private readonly owner: SpoolOwner | undefined) {}

  /** The row at `from` gets the number `to`: each of its files gets the new name too. */
  relocate(from: AudioPlace, to: AudioPlace): void {
    const src = this.dirOf(from);
    const dst = this.dirOf(to);
    const names = namesAt(src, from.msgnum);
    this.clear(dst, to);
    for (const name of names) {
      const target = join(dst, msgName(to.msgnum, extOf(name)));
      this.link(join(src, name), target);
    }
    for (const name of names) this.obsolete.push({ name: join(src, name) });
  }

  /** The row at `from` is deleted: its files get a second name beside them, gone with them after the commit. */
  discard(from: AudioPlace): void {
    const dir = this.dirOf(from);
    for (const name of namesAt(dir, from.msgnum)) {
      const trash = join(dir, `${TRASH_PREFIX}${name}`);
      // A name an earlier interrupted deletion left: a second name, or the last of audio no row holds.
      unlinkQuietly(trash);
      this.link(join(dir, name), trash);
      this.obsolete.push({ name: join(dir, name), then: trash });
    }
  }

  /** The transaction failed before its commit: the new names go, the row's files are where they were. */
  undo(): void {
    for (const path of this.made.splice(0)) unlinkQuietly(path);
  }

  /** The row change is committed: the old names go. One that cannot is a second name, tidied later. */
  committed(): void {
    for (const { name, then } of this.obsolete.splice(0)) {
      if (!this.remove(name)) continue;
      if (then !== undefined) this.remove(then);
    }
    this.made.length = 0;
  }

  private remove(path: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return true;
      this.repairs.push(`${path}: could not be removed (${errText(err)}); it is a second name of a file and is removed at the folder's next change`);
      return false;
    }
  }

  private link(from: string, to: string): void {
    try {
      linkSync(from, to);
    } catch (err) {
      throw new SpoolWriteError(from, `cannot be linked to ${to}: ${errText(err)}${linkHint(err)}; nothing was changed`, { cause: err });
    }
    this.made.push(to);
  }

  private dirOf(at: AudioPlace): string {
    checkFolder(at.folder);
    checkMsgnum(at.msgnum);
    const dir = join(this.box, at.folder);
    // Throws for a link in the path; a folder not there has no files, and a link into it fails naming it.
    realDirsSync(dir);
    return dir;
  }

  /**
   * Makes number `to` free in its folder. No row has it, so a file there is a second name (removed)
   * or audio of no known message (moved to `<mailbox>/tmp/`, never overwritten or deleted).
   */
  private clear(dir: string, to: AudioPlace): void {
    for (const name of namesAt(dir, to.msgnum)) {
      const path = join(dir, name);
      const st = lstatOrUndefined(path);
      if (st === undefined) continue;
      if (st.nlink >= 2 && unlinkQuietly(path)) {
        this.repairs.push(`${path}: removed a second name an interrupted change left (the audio is kept under its other name)`);
        continue;
      }
      const tmp = join(this.box, 'tmp');
      ensureFolderSync(tmp, this.owner);
      const kept = join(tmp, `vmbridge-orphan-${to.folder}-${name.slice(0, name.indexOf('.'))}-${randomBytes(4).toString('hex')}.${extOf(name)}`);
      try {
        renameSync(path, kept);
      } catch (err) {
        throw new SpoolWriteError(path, `audio of no message in the table is in the way and could not be moved to ${tmp}: ${errText(err)}; nothing was changed`, { cause: err });
      }
      this.repairs.push(`${path}: audio of no message in the table was in the way; moved to ${kept}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Listings

function emptyAudio(): FolderAudio {
  return { names: new Map(), unsafe: new Map(), trash: [] };
}

function toFolderAudio(dir: string, entries: readonly Dirent[]): FolderAudio {
  const names = new Map<number, string[]>();
  const unsafe = new Map<number, { path: string; what: string }>();
  const trash: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(TRASH_PREFIX)) {
      if (e.isFile()) trash.push(e.name);
      continue;
    }
    const m = AUDIO_FILE.exec(e.name);
    if (!m || m[2]!.toLowerCase() === 'txt') continue;
    const n = Number(m[1]);
    if (n > MAX_MSGNUM) continue; // msg9999 is not a message to Asterisk
    if (!e.isFile()) {
      unsafe.set(n, { path: join(dir, e.name), what: e.isSymbolicLink() ? 'is a symbolic link' : 'is not a regular file' });
      continue;
    }
    const list = names.get(n);
    if (list) list.push(e.name);
    else names.set(n, [e.name]);
  }
  for (const list of names.values()) list.sort();
  return { names, unsafe, trash };
}

function listSync(dir: string): FolderAudio {
  try {
    return toFolderAudio(dir, readdirSync(dir, { withFileTypes: true }));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return emptyAudio();
    throw new SpoolWriteError(dir, `cannot be listed: ${errText(err)}`, { cause: err });
  }
}

/** The audio names of one number; a link or other non-file there refuses the change. */
function namesAt(dir: string, msgnum: number): readonly string[] {
  if (!realDirsSync(dir)) return [];
  const audio = listSync(dir);
  const bad = audio.unsafe.get(msgnum);
  if (bad) throw new UnsafeSpoolEntryError(bad.path, bad.what);
  return audio.names.get(msgnum) ?? [];
}

// ---------------------------------------------------------------------------------------------
// Folders

/** The folder and its mailbox and context folders are real folders (true), or one is missing (false). */
function realDirsSync(dir: string): boolean {
  for (const d of chain(dir)) {
    const st = lstatOrUndefined(d);
    if (st === undefined) return false;
    checkRealDir(d, st);
  }
  return true;
}

async function realDirsAsync(dir: string): Promise<boolean> {
  for (const d of chain(dir)) {
    let st: Stats;
    try {
      st = await lstat(d);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw new SpoolWriteError(d, `cannot be examined: ${errText(err)}`, { cause: err });
    }
    checkRealDir(d, st);
  }
  return true;
}

/** `<context>`, `<context>/<mailbox>`, `<context>/<mailbox>/<folder>` of a folder path. */
function chain(dir: string): string[] {
  const box = dirname(dir);
  return [dirname(box), box, dir];
}

/** Folders mkdir -p just made, from `first` down to `dir`, get Asterisk's owner. */
async function giveAwayFrom(first: string, dir: string, owner: SpoolOwner): Promise<void> {
  const made: string[] = [];
  for (let d = dir; d.length >= first.length; d = dirname(d)) made.push(d);
  for (const d of made.reverse()) await lchown(d, owner.uid, owner.gid);
}
