/**
 * The audio files of the table's rows when voicemail.conf has `odbc_audio_on_disk=yes`: the row's
 * `recording` holds `AUDMAGIC` and the recordings are `<Folder>/msgNNNN.<ext>` in the mailbox's
 * spool folder, one per format (wav, WAV, gsm, ...); a row's `.txt` there is only a copy of the row
 * Asterisk writes for playing it.
 *
 * Paths are built from checked names only (mailboxDir, the fixed folder names, numbers, and
 * extensions of letters and digits), and a symbolic link below `voicemail/` is never followed: a
 * folder or audio file that is one is refused, naming it.
 */
import { constants, type Dirent, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mailboxDir } from '../../spool/names.js';
import { DIR_MODE, ownerIn, type SpoolOwner, type SpoolOwnership } from '../../spool/ownership.js';
import { isSyncedSpoolFolder, type MailboxRef, type SyncedSpoolFolder } from '../../spool/types.js';
import { MAX_MSGNUM, SpoolRequestError, SpoolWriteError, UnsafeSpoolEntryError } from '../../spool/write.js';

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
}

const AUDIO_FILE = /^msg(\d{4})\.([A-Za-z0-9]+)$/;
const readFlags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export const msgName = (n: number, ext: string): string => `msg${String(n).padStart(4, '0')}.${ext}`;

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
    for (const d of [dirname(box), box, dir]) await ensureRealDir(d, owner);
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
}

// ---------------------------------------------------------------------------------------------
// Listings

function emptyAudio(): FolderAudio {
  return { names: new Map(), unsafe: new Map() };
}

function toFolderAudio(dir: string, entries: readonly Dirent[]): FolderAudio {
  const names = new Map<number, string[]>();
  const unsafe = new Map<number, { path: string; what: string }>();
  for (const e of entries) {
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
  return { names, unsafe };
}

// ---------------------------------------------------------------------------------------------
// Folders

/** The folder and its mailbox and context folders are real folders (true), or one is missing (false). */
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

function checkRealDir(path: string, st: Stats): void {
  if (st.isSymbolicLink()) throw new UnsafeSpoolEntryError(path, 'is a symbolic link');
  if (!st.isDirectory()) throw new UnsafeSpoolEntryError(path, 'is not a directory');
}

/** Creates a missing folder like Asterisk (0777 minus umask), given to `owner`; a link in its place is refused. */
async function ensureRealDir(dir: string, owner: SpoolOwner | undefined): Promise<void> {
  try {
    await mkdir(dir, DIR_MODE);
    if (owner) await lchown(dir, owner.uid, owner.gid);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw new SpoolWriteError(dir, `cannot create the folder: ${errText(err)}`, { cause: err });
  }
  checkRealDir(dir, await lstat(dir));
}

/** Folders mkdir -p just made, from `first` down to `dir`, get Asterisk's owner. */
async function giveAwayFrom(first: string, dir: string, owner: SpoolOwner): Promise<void> {
  const made: string[] = [];
  for (let d = dir; d.length >= first.length; d = dirname(d)) made.push(d);
  for (const d of made.reverse()) await lchown(d, owner.uid, owner.gid);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function errnoOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function errText(err: unknown): string {
  return errnoOf(err) ?? (err instanceof Error ? err.message : String(err));
}
