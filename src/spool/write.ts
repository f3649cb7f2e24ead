/**
 * Changes vmbridge makes to the spool when a voicemail's email was read, filed or deleted: a
 * message moves to another folder, or leaves its folder (into `Deleted/` when voicemail.conf's
 * `backupdeleted` asks for that). The protocol and the reasons for each step are in
 * docs/spool-writes.md; in short:
 *
 * - Everything that needs reading (finding the message by its id, the folder listings) is done
 *   before the folder lock is taken. Under the lock only the listing is repeated and files are
 *   linked, renamed and unlinked, so a hold lasts milliseconds, not Asterisk's 5 s limit.
 * - A message exists while its `msgNNNN.txt` exists, so the .txt is the commit point. A message's
 *   files move by hard-linking every audio file to its new name first, then renaming the .txt
 *   (the commit), then unlinking the old audio names. Whenever the process stops, every message
 *   has all its audio under at least one name, and a file under a name with no .txt beside it
 *   while it has another name is a leftover, safe to unlink. That is the whole crash recovery.
 * - Folders are renumbered down to contiguous numbers afterwards, as Asterisk does when it closes
 *   a folder. Audio that belongs to no message and stands in the way is moved to `<mailbox>/tmp/`,
 *   never deleted.
 * - Symbolic links are never followed, names are validated, and nothing outside
 *   `<spool>/voicemail/<context>/<mailbox>` is touched.
 *
 * The synchronous fs calls are deliberate: they run while the lock is held, and a synchronous call
 * cannot be queued behind other work on libuv's thread pool, which would stretch the hold.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, unlinkSync, type Dirent, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VmbridgeError } from '../errors.js';
import { MAX_ENVELOPE_BYTES, parseEnvelope } from './envelope.js';
import { cachedEnvelope, rememberEnvelope } from './envelope-cache.js';
import { messageIdentity } from './identity.js';
import { clearOwnStaleLocks, withFolderLock, type ClearStaleOptions, type LockMode, type LockOptions, type StaleLockReport } from './lock.js';
import { mailboxDir } from './names.js';
import { DIR_MODE, ownerIn, type SpoolOwner, type SpoolOwnership } from './ownership.js';
import { isSyncedSpoolFolder, mailboxKey, type MailboxRef, type SyncedSpoolFolder } from './types.js';
import { errText, errnoOf, lstatOrUndefined, unlinkQuietly } from './fs-quiet.js';

/** voicemail.conf's default `maxmsg`. */
export const DEFAULT_MAXMSG = 100;
/** Highest message number Asterisk uses: last_message_index looks below 9999 only. */
export const MAX_MSGNUM = 9998;
/** Asterisk's limit for `maxmsg` and `backupdeleted`. */
const MAX_FOLDER_LIMIT = 9999;
/**
 * While the source folder is held, the destination is waited for at most this long, so the source
 * hold (the wait included) stays far below Asterisk's 5 s.
 */
export const DEFAULT_NESTED_LOCK_TIMEOUT_MS = 2_000;
/** leave_voicemail chmods the .txt to exactly this, whatever the umask. */
const TXT_MODE = 0o666;
/** `msg` + 4 digits + an extension of letters and digits: the .txt and one file per audio format. */
const MESSAGE_FILE = /^msg(\d{4})\.([A-Za-z0-9]+)$/;
/** Envelopes read in flight while planning. */
const READ_CONCURRENCY = 16;

// ---------------------------------------------------------------------------------------------
// Errors

/** The message is neither where it was asked to be taken from nor where it was to go. */
export class MessageNotFoundError extends VmbridgeError {
  readonly id: string;
  constructor(ref: MailboxRef, id: string, folders: readonly string[]) {
    super('SPOOL_MESSAGE_NOT_FOUND', `${mailboxKey(ref)}: no message with id ${JSON.stringify(id)} in ${folders.join(' or ')}; nothing was changed`);
    this.id = id;
  }
}

/** The destination folder has no room: `maxmsg`, or Asterisk's 9999 numbers. Nothing was changed. */
export class FolderFullError extends VmbridgeError {
  readonly folder: string;
  readonly limit: number;
  constructor(folder: string, limit: number, why: string) {
    super('SPOOL_FOLDER_FULL', `${folder}: ${why}; nothing was changed`);
    this.folder = folder;
    this.limit = limit;
  }
}

/**
 * The message is in two places at once (both folders, or twice in one): Asterisk is copying it
 * (VoiceMailMain copies at once and deletes the original only when the caller leaves), or copies
 * share its id. Nothing was changed; try again after the next observation.
 */
export class SpoolInFluxError extends VmbridgeError {
  readonly id: string;
  constructor(ref: MailboxRef, id: string, where: string) {
    super('SPOOL_IN_FLUX', `${mailboxKey(ref)}: message ${JSON.stringify(id)} is ${where}; nothing was changed, try again later`);
    this.id = id;
  }
}

/** A symbolic link, device, directory or similar where a message file or folder should be. */
export class UnsafeSpoolEntryError extends VmbridgeError {
  readonly path: string;
  constructor(path: string, what: string) {
    super('SPOOL_UNSAFE_ENTRY', `${path}: ${what}; vmbridge does not follow or move it, and changed nothing. Remove or fix it by hand.`);
    this.path = path;
  }
}

/** A link, rename or unlink failed. Up to the .txt rename everything is undone; after it, the change stands. */
export class SpoolWriteError extends VmbridgeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('SPOOL_WRITE', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** The request itself is wrong (same folder twice, a limit out of range, an unknown folder). */
export class SpoolRequestError extends VmbridgeError {
  constructor(message: string) {
    super('SPOOL_BAD_REQUEST', message);
  }
}

// ---------------------------------------------------------------------------------------------
// Options and results

export type { SpoolOwner, SpoolOwnership } from './ownership.js';

export interface WriteOptions {
  /** asterisk.conf `lockmode`. */
  readonly lockmode: LockMode;
  /**
   * Set when vmbridge runs as root: folders it creates are given to asterisk.conf's
   * runuser/rungroup, a part not configured to the mailbox folder's (src/spool/ownership.ts).
   */
  readonly owner?: SpoolOwnership;
  /** Timeout of the first (source) lock; default 4 s. */
  readonly lock?: LockOptions;
  /** Timeout of the second lock, taken while the first is held; default 2 s. */
  readonly nestedLockTimeoutMs?: number;
}

export interface MoveVoicemailOptions extends WriteOptions {
  /** msg_id, or the derived id for envelopes without one. */
  readonly id: string;
  readonly from: SyncedSpoolFolder;
  readonly to: SyncedSpoolFolder;
  /** The mailbox's voicemail.conf `maxmsg` (per folder); default 100. */
  readonly maxmsg?: number;
}

export interface MoveResult {
  /** The message's number in `to`. */
  readonly msgnum: number;
  /** True when the message was already in `to` (a repeated request): nothing was changed. */
  readonly alreadyDone: boolean;
  /** Leftovers of interrupted changes found and tidied on the way, for the log. */
  readonly repairs: readonly string[];
}

export interface RemoveVoicemailOptions extends WriteOptions {
  readonly id: string;
  readonly folder: SyncedSpoolFolder;
  /** voicemail.conf `backupdeleted`: 0 deletes; N keeps the last N deleted messages in `Deleted/`. */
  readonly backupDeleted: number;
}

export interface RemoveResult {
  /** False when the message was already gone (a repeated request): nothing was changed. */
  readonly removed: boolean;
  /** Its number in `Deleted/`, when it was kept there. */
  readonly deletedMsgnum?: number;
  readonly repairs: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Operations

/**
 * Moves a message from one folder to another: to the end of `to` (its highest number + 1), every
 * file of it, then renumbers `from` down to contiguous numbers. Idempotent: if the message is
 * already in `to` and no longer in `from`, it succeeds (`alreadyDone`), only finishing the
 * renumbering of `from` if an interrupted run left that undone.
 */
export async function moveVoicemail(spoolDir: string, ref: MailboxRef, opts: MoveVoicemailOptions): Promise<MoveResult> {
  const { id, from, to } = opts;
  checkFolderName('from', from);
  checkFolderName('to', to);
  if (from === to) throw new SpoolRequestError(`moving ${JSON.stringify(id)} from ${from} to itself`);
  checkId(id);
  const maxmsg = checkLimit('maxmsg', opts.maxmsg ?? DEFAULT_MAXMSG);
  const box = await mailboxPath(spoolDir, ref);
  const owner = ownerIn(box, opts.owner);
  const srcDir = join(box, from);
  const dstDir = join(box, to);
  const repairs: string[] = [];

  // Planning, without the lock.
  const inSrc = await findId(srcDir, await listFolderAsync(srcDir), id);
  const dstPlan = await listFolderAsync(dstDir);
  const inDst = await findId(dstDir, dstPlan, id);
  if (inDst.length > 1) throw new SpoolInFluxError(ref, id, `in ${to} more than once`);
  if (inSrc.length === 0) {
    if (inDst[0] === undefined) throw new MessageNotFoundError(ref, id, [from, to]);
    // Already done; if an interrupted run got this far, its last step (renumbering `from`) is not.
    await finishFolder(box, srcDir, opts, repairs);
    return { msgnum: inDst[0], alreadyDone: true, repairs };
  }
  if (inSrc.length > 1) throw new SpoolInFluxError(ref, id, `in ${from} more than once`);
  if (inDst.length > 0) throw new SpoolInFluxError(ref, id, `in both ${from} and ${to}`);
  checkRoom(dstDir, nextNumber(dstPlan), maxmsg); // refuse early; checked again under the lock
  await ensureFolder(dstDir, owner);
  const planned = inSrc[0] as number;

  // Source first, then destination: Asterisk's order (close_mailbox holds the folder it closes and
  // takes Old or Deleted inside it), so the two can never wait for each other in a circle.
  return withFolderLock(srcDir, opts.lockmode, async (): Promise<MoveResult> => {
    const src = listFolder(srcDir);
    const a = locate(srcDir, src, id, planned);
    if (a === 'twice') throw new SpoolInFluxError(ref, id, `in ${from} more than once`);
    if (a === 'absent') {
      // Gone since it was observed: moved by someone else (then it is in `to`), or deleted.
      const there = findIdSync(dstDir, listFolder(dstDir), id);
      if (there.length !== 1) throw new MessageNotFoundError(ref, id, [from, to]);
      removeLeftoverLinks(srcDir, src, repairs);
      compact(box, srcDir, src, owner, repairs);
      return { msgnum: there[0] as number, alreadyDone: true, repairs };
    }
    const slot = src.slots.get(a) as Slot;
    const msgnum = await withFolderLock(dstDir, opts.lockmode, (): number => {
      const dst = listFolder(dstDir);
      const n = nextNumber(dst);
      checkRoom(dstDir, n, maxmsg);
      removeLeftoverLinks(dstDir, dst, repairs);
      clearSlot(box, dstDir, n, dst, owner, repairs);
      relocate(srcDir, a, slot, dstDir, n, repairs);
      setTxtMode(join(dstDir, msgName(n, 'txt')), repairs);
      return n;
    }, nestedLock(opts));
    src.slots.delete(a);
    removeLeftoverLinks(srcDir, src, repairs);
    compact(box, srcDir, src, owner, repairs);
    return { msgnum, alreadyDone: false, repairs };
  }, opts.lock);
}

/**
 * Takes a message out of its folder: into `Deleted/` when `backupDeleted` > 0 (dropping the oldest
 * there when it already holds that many, as Asterisk does), otherwise deleting its files, .txt
 * first. Then renumbers the folder. Idempotent: a message that is not there counts as removed
 * (`removed: false`), and an interrupted run's renumbering is finished.
 */
export async function removeVoicemail(spoolDir: string, ref: MailboxRef, opts: RemoveVoicemailOptions): Promise<RemoveResult> {
  const { id, folder } = opts;
  checkFolderName('folder', folder);
  checkId(id);
  const backup = checkLimit('backupDeleted', opts.backupDeleted);
  const box = await mailboxPath(spoolDir, ref);
  const owner = ownerIn(box, opts.owner);
  const dir = join(box, folder);
  const deletedDir = join(box, 'Deleted');
  const repairs: string[] = [];

  const listing = await listFolderAsync(dir);
  const found = await findId(dir, listing, id);
  if (found.length === 0) {
    await finishFolder(box, dir, opts, repairs, listing);
    return { removed: false, repairs };
  }
  if (found.length > 1) throw new SpoolInFluxError(ref, id, `in ${folder} more than once`);
  if (backup > 0) await ensureFolder(deletedDir, owner);
  const planned = found[0] as number;

  return withFolderLock(dir, opts.lockmode, async (): Promise<RemoveResult> => {
    const cur = listFolder(dir);
    const a = locate(dir, cur, id, planned);
    if (a === 'absent') {
      removeLeftoverLinks(dir, cur, repairs);
      compact(box, dir, cur, owner, repairs);
      return { removed: false, repairs };
    }
    if (a === 'twice') throw new SpoolInFluxError(ref, id, `in ${folder} more than once`);
    const slot = cur.slots.get(a) as Slot;
    let deletedMsgnum: number | undefined;
    if (backup > 0) {
      deletedMsgnum = await withFolderLock(deletedDir, opts.lockmode, (): number => {
        const del = listFolder(deletedDir);
        removeLeftoverLinks(deletedDir, del, repairs);
        compact(box, deletedDir, del, owner, repairs);
        // Asterisk's FIFO: a full Deleted/ loses its oldest message (msg0000) and the rest shift down.
        if (messageNumbers(del).length >= backup) {
          deleteMessageFiles(deletedDir, 0, del.slots.get(0) as Slot);
          del.slots.delete(0);
          compact(box, deletedDir, del, owner, repairs);
        }
        const n = nextNumber(del);
        clearSlot(box, deletedDir, n, del, owner, repairs);
        relocate(dir, a, slot, deletedDir, n, repairs);
        setTxtMode(join(deletedDir, msgName(n, 'txt')), repairs);
        return n;
      }, nestedLock(opts));
    } else {
      deleteMessageFiles(dir, a, slot);
    }
    cur.slots.delete(a);
    removeLeftoverLinks(dir, cur, repairs);
    compact(box, dir, cur, owner, repairs);
    return deletedMsgnum === undefined ? { removed: true, repairs } : { removed: true, deletedMsgnum, repairs };
  }, opts.lock);
}

/**
 * The last steps of a change asked for again after an interruption: leftover names removed and the
 * folder renumbered. Locks only when there is something to do, so a plain repeat stays read-only.
 */
async function finishFolder(box: string, dir: string, opts: WriteOptions, repairs: string[], planned?: Listing): Promise<void> {
  if (!(await needsFinishing(dir, planned ?? (await listFolderAsync(dir))))) return;
  await withFolderLock(dir, opts.lockmode, () => {
    const listing = listFolder(dir);
    removeLeftoverLinks(dir, listing, repairs);
    compact(box, dir, listing, ownerIn(box, opts.owner), repairs);
  }, opts.lock);
}

async function needsFinishing(dir: string, listing: Listing): Promise<boolean> {
  if (messageNumbers(listing).some((n, i) => n !== i)) return true;
  for (const slot of listing.slots.values()) {
    if (slot.hasTxt) continue;
    for (const name of slot.names) {
      const st = await lstat(join(dir, name)).catch(() => undefined);
      if (st !== undefined && st.nlink > 1) return true;
    }
  }
  return false;
}

/**
 * Closes the gaps in a folder's numbers (and removes names an interrupted change left), under the
 * folder's lock; returns what was changed. A folder without gaps is only read.
 */
export async function renumberFolder(spoolDir: string, ref: MailboxRef, folder: SyncedSpoolFolder, opts: WriteOptions): Promise<string[]> {
  checkFolderName('folder', folder);
  const box = await mailboxPath(spoolDir, ref);
  const dir = join(box, folder);
  const before = messageNumbers(await listFolderAsync(dir));
  const repairs: string[] = [];
  await finishFolder(box, dir, opts, repairs);
  if (before.some((n, i) => n !== i)) repairs.push(`${dir}: messages ${before.join(', ')} renumbered 0-${before.length - 1}`);
  return repairs;
}

/**
 * Tidies one folder after an interrupted change. The caller holds the folder's lock. Removes file
 * names that have no .txt beside them and whose file has another name (the audio is kept under
 * that one). Does not renumber: Asterisk closes gaps itself the next time it opens the folder, and
 * a voicemail session may have the folder open right now.
 */
export function repairFolder(folderDir: string): string[] {
  const repairs: string[] = [];
  removeLeftoverLinks(folderDir, listFolder(folderDir), repairs);
  return repairs;
}

/**
 * Start-up recovery: clearOwnStaleLocks with repairFolder, so a folder a dead vmbridge left locked
 * is tidied before anyone else (Asterisk included) sees it.
 */
export function recoverOwnStaleLocks(spoolDir: string, opts: Omit<ClearStaleOptions, 'repair'> = {}): Promise<StaleLockReport> {
  return clearOwnStaleLocks(spoolDir, { ...opts, repair: (dir) => void repairFolder(dir) });
}

// ---------------------------------------------------------------------------------------------
// Folder listings

/** The files of one message number: its .txt (if any) and its audio, by name. */
interface Slot {
  hasTxt: boolean;
  names: string[];
}

interface Listing {
  readonly slots: Map<number, Slot>;
}

const msgName = (n: number, ext: string): string => `msg${String(n).padStart(4, '0')}.${ext}`;
const extOf = (name: string): string => name.slice(name.indexOf('.') + 1);
const isTxt = (name: string): boolean => extOf(name) === 'txt';

function toListing(dir: string, entries: readonly Dirent[]): Listing {
  const slots = new Map<number, Slot>();
  for (const e of entries) {
    const m = MESSAGE_FILE.exec(e.name);
    if (!m) continue;
    const n = Number(m[1]);
    if (n > MAX_MSGNUM) continue; // msg9999.* is not a message to Asterisk; left alone
    // A symbolic link could make a rename, link or chmod act outside the mailbox: refuse the folder.
    if (e.isSymbolicLink()) throw new UnsafeSpoolEntryError(join(dir, e.name), 'is a symbolic link');
    if (!e.isFile()) throw new UnsafeSpoolEntryError(join(dir, e.name), 'is not a regular file');
    let slot = slots.get(n);
    if (!slot) slots.set(n, (slot = { hasTxt: false, names: [] }));
    slot.names.push(e.name);
    if (m[2] === 'txt') slot.hasTxt = true;
  }
  return { slots };
}

/** A folder that does not exist lists as empty; a symbolic link in its place is refused. */
function listFolder(dir: string): Listing {
  const st = lstatOrUndefined(dir);
  if (st === undefined) return { slots: new Map() };
  checkRealDir(dir, st);
  try {
    return toListing(dir, readdirSync(dir, { withFileTypes: true }));
  } catch (err) {
    if (err instanceof VmbridgeError) throw err;
    if (errnoOf(err) === 'ENOENT') return { slots: new Map() };
    throw new SpoolWriteError(dir, `cannot be listed: ${errText(err)}`, { cause: err });
  }
}

async function listFolderAsync(dir: string): Promise<Listing> {
  let st: Stats;
  try {
    st = await lstat(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { slots: new Map() };
    throw new SpoolWriteError(dir, `cannot be examined: ${errText(err)}`, { cause: err });
  }
  checkRealDir(dir, st);
  try {
    return toListing(dir, await readdir(dir, { withFileTypes: true }));
  } catch (err) {
    if (err instanceof VmbridgeError) throw err;
    if (errnoOf(err) === 'ENOENT') return { slots: new Map() };
    throw new SpoolWriteError(dir, `cannot be listed: ${errText(err)}`, { cause: err });
  }
}

function messageNumbers(listing: Listing): number[] {
  return [...listing.slots].filter(([, s]) => s.hasTxt).map(([n]) => n).sort((a, b) => a - b);
}

/** Asterisk's next number: the highest msgNNNN.txt + 1 (gaps below are not reused). */
function nextNumber(listing: Listing): number {
  const nums = messageNumbers(listing);
  return nums.length === 0 ? 0 : (nums[nums.length - 1] as number) + 1;
}

// ---------------------------------------------------------------------------------------------
// Finding a message by id

function idOf(data: Buffer, path: string, st: Stats): string | undefined {
  try {
    const envelope = parseEnvelope(data, path, { fileTime: Math.floor(st.mtimeMs / 1000) });
    rememberEnvelope(st, envelope);
    return messageIdentity(envelope).id;
  } catch {
    return undefined; // not a readable envelope: it cannot be the message asked for
  }
}

const readFlags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** The id in a .txt the reader (or an earlier search) parsed and that has not changed: one lstat. */
function cachedId(st: Stats): string | undefined {
  const envelope = cachedEnvelope(st);
  return envelope === undefined ? undefined : messageIdentity(envelope).id;
}

async function readIdAsync(path: string): Promise<string | undefined> {
  try {
    const known = cachedId(await lstat(path));
    if (known !== undefined) return known;
  } catch {
    return undefined;
  }
  let fh;
  try {
    fh = await open(path, readFlags);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_ENVELOPE_BYTES) return undefined;
    return idOf(await fh.readFile(), path, st);
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

function readIdSync(path: string): string | undefined {
  try {
    const known = cachedId(lstatSync(path));
    if (known !== undefined) return known;
  } catch {
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync(path, readFlags);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(MAX_ENVELOPE_BYTES + 1);
    let len = 0;
    for (let n; len < buf.length && (n = readSync(fd, buf, len, buf.length - len, len)) > 0; ) len += n;
    return len > MAX_ENVELOPE_BYTES ? undefined : idOf(buf.subarray(0, len), path, st);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Numbers of the messages in the folder whose id is `id` (normally one, or none). */
async function findId(dir: string, listing: Listing, id: string): Promise<number[]> {
  const nums = messageNumbers(listing);
  const hits: number[] = [];
  for (let i = 0; i < nums.length; i += READ_CONCURRENCY) {
    const batch = nums.slice(i, i + READ_CONCURRENCY);
    const ids = await Promise.all(batch.map((n) => readIdAsync(join(dir, msgName(n, 'txt')))));
    ids.forEach((got, k) => {
      if (got === id) hits.push(batch[k] as number);
    });
  }
  return hits;
}

function findIdSync(dir: string, listing: Listing, id: string): number[] {
  return messageNumbers(listing).filter((n) => readIdSync(join(dir, msgName(n, 'txt'))) === id);
}

/**
 * Where the message is now, under the lock. Usually where planning found it (one small read to
 * confirm); if Asterisk renumbered the folder meanwhile, the folder is searched again.
 */
function locate(dir: string, listing: Listing, id: string, planned: number): number | 'absent' | 'twice' {
  if (listing.slots.get(planned)?.hasTxt && readIdSync(join(dir, msgName(planned, 'txt'))) === id) return planned;
  const hits = findIdSync(dir, listing, id);
  if (hits.length === 0) return 'absent';
  return hits.length > 1 ? 'twice' : (hits[0] as number);
}

// ---------------------------------------------------------------------------------------------
// Changing files (run under the folder lock; synchronous, see the top of the file)

/**
 * Gives message `a` of `srcDir` the number `n` in `dstDir` (the same folder when renumbering):
 * 1. hard-link every audio file to its new name: the message is still whole where it was;
 * 2. rename the .txt: the commit, the message now exists at its new place only;
 * 3. unlink the old audio names.
 * A failure before 2 removes the new names again; a crash before 2 leaves new names with no .txt,
 * and one after 2 old names with no .txt: both are second names of files that belong to a whole
 * message, and removeLeftoverLinks takes them away.
 */
function relocate(srcDir: string, a: number, slot: Slot, dstDir: string, n: number, repairs: string[]): void {
  const audio = slot.names.filter((name) => !isTxt(name));
  const made: string[] = [];
  try {
    for (const name of audio) {
      const target = join(dstDir, msgName(n, extOf(name)));
      linkSync(join(srcDir, name), target);
      made.push(target);
    }
    renameSync(join(srcDir, msgName(a, 'txt')), join(dstDir, msgName(n, 'txt')));
  } catch (err) {
    for (const p of made) unlinkQuietly(p);
    throw new SpoolWriteError(join(srcDir, msgName(a, 'txt')), `cannot move to ${join(dstDir, msgName(n, 'txt'))}: ${errText(err)}${linkHint(err)}; nothing was changed`, { cause: err });
  }
  for (const name of audio) {
    const old = join(srcDir, name);
    try {
      unlinkSync(old);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') repairs.push(`${old}: could not remove the old name (${errText(err)}); it is a second name of ${join(dstDir, msgName(n, extOf(name)))} and will be tidied later`);
    }
  }
  slot.names = slot.names.map((name) => msgName(n, extOf(name)));
}

/** vm_delete's order: the .txt first, so the message stops existing at once, then the audio. */
function deleteMessageFiles(dir: string, n: number, slot: Slot): void {
  const txt = join(dir, msgName(n, 'txt'));
  try {
    unlinkSync(txt);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw new SpoolWriteError(txt, `cannot be deleted: ${errText(err)}; nothing was changed`, { cause: err });
  }
  for (const name of slot.names) if (!isTxt(name)) unlinkQuietly(join(dir, name));
}

/**
 * Renames the folder's messages down to 0, 1, 2, ... in their order, as Asterisk does when it
 * closes a folder, so Asterisk's numbers, counts and "next number" agree again.
 */
function compact(box: string, dir: string, listing: Listing, owner: SpoolOwner | undefined, repairs: string[]): void {
  let next = 0;
  for (const n of messageNumbers(listing)) {
    if (n !== next) {
      clearSlot(box, dir, next, listing, owner, repairs);
      const slot = listing.slots.get(n) as Slot;
      relocate(dir, n, slot, dir, next, repairs);
      listing.slots.delete(n);
      listing.slots.set(next, slot);
    }
    next++;
  }
}

/** Removes names with no .txt beside them whose file has another name (see relocate). */
function removeLeftoverLinks(dir: string, listing: Listing, repairs: string[]): void {
  for (const [n, slot] of [...listing.slots]) {
    if (slot.hasTxt) continue;
    slot.names = slot.names.filter((name) => {
      const path = join(dir, name);
      const st = lstatOrUndefined(path);
      if (st === undefined) return false;
      if (!st.isFile() || st.nlink < 2) return true;
      if (!unlinkQuietly(path)) return true;
      repairs.push(`${path}: removed a leftover name of an interrupted move (the audio is kept under its other name)`);
      return false;
    });
    if (slot.names.length === 0) listing.slots.delete(n);
  }
}

/**
 * Makes number `n` free before a message is given it. What is there has no .txt (n is past the
 * last message, or a gap): second names are removed, and audio that belongs to no message is moved
 * to `<mailbox>/tmp/vmbridge-orphan-*` rather than overwritten or deleted.
 */
function clearSlot(box: string, dir: string, n: number, listing: Listing, owner: SpoolOwner | undefined, repairs: string[]): void {
  const slot = listing.slots.get(n);
  if (slot === undefined) return;
  if (slot.hasTxt) throw new SpoolWriteError(join(dir, msgName(n, 'txt')), 'is in the way (internal error); nothing was changed');
  const tmp = join(box, 'tmp');
  for (const name of slot.names) {
    const from = join(dir, name);
    const st = lstatOrUndefined(from);
    if (st === undefined) continue;
    if (st.nlink >= 2 && unlinkQuietly(from)) {
      repairs.push(`${from}: removed a leftover name of an interrupted move (the audio is kept under its other name)`);
      continue;
    }
    ensureFolderSync(tmp, owner);
    const to = join(tmp, `vmbridge-orphan-${basename(dir)}-${name.slice(0, name.indexOf('.'))}-${randomBytes(4).toString('hex')}.${extOf(name)}`);
    try {
      renameSync(from, to);
    } catch (err) {
      throw new SpoolWriteError(from, `audio without a message is in the way and could not be moved to ${tmp}: ${errText(err)}`, { cause: err });
    }
    repairs.push(`${from}: audio without a message was in the way; moved to ${to}`);
  }
  listing.slots.delete(n);
}

/** Asterisk leaves the .txt at exactly 0666; a rename keeps the mode, so this is seldom needed. */
function setTxtMode(path: string, repairs: string[]): void {
  try {
    if ((lstatSync(path).mode & 0o7777) !== TXT_MODE) chmodSync(path, TXT_MODE);
  } catch (err) {
    repairs.push(`${path}: could not set mode 0666 (${errText(err)}); the message is in place`);
  }
}

// ---------------------------------------------------------------------------------------------
// Paths and checks

async function mailboxPath(spoolDir: string, ref: MailboxRef): Promise<string> {
  const box = mailboxDir(spoolDir, ref); // validates the names and the resolved path
  for (const dir of [dirname(box), box]) {
    try {
      checkRealDir(dir, await lstat(dir));
    } catch (err) {
      if (err instanceof VmbridgeError) throw err;
      if (errnoOf(err) !== 'ENOENT') throw new SpoolWriteError(dir, `cannot be examined: ${errText(err)}`, { cause: err });
    }
  }
  return box;
}

export function checkRealDir(path: string, st: Stats): void {
  if (st.isSymbolicLink()) throw new UnsafeSpoolEntryError(path, 'is a symbolic link');
  if (!st.isDirectory()) throw new UnsafeSpoolEntryError(path, 'is not a directory');
}

/** Creates a missing folder like Asterisk (0777 minus umask), given to `owner` when there is one. */
export async function ensureFolder(dir: string, owner: SpoolOwner | undefined): Promise<void> {
  try {
    await mkdir(dir, DIR_MODE);
    if (owner) await lchown(dir, owner.uid, owner.gid);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw new SpoolWriteError(dir, `cannot create the folder: ${errText(err)}`, { cause: err });
  }
  checkRealDir(dir, await lstat(dir));
}

export function ensureFolderSync(dir: string, owner: SpoolOwner | undefined): void {
  const st = lstatOrUndefined(dir);
  if (st !== undefined) return checkRealDir(dir, st);
  try {
    mkdirSync(dir, DIR_MODE);
    if (owner) lchownSync(dir, owner.uid, owner.gid);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw new SpoolWriteError(dir, `cannot create the folder: ${errText(err)}`, { cause: err });
  }
  checkRealDir(dir, lstatSync(dir));
}

function checkRoom(dir: string, n: number, maxmsg: number): void {
  if (n > MAX_MSGNUM) throw new FolderFullError(dir, MAX_MSGNUM + 1, `holds message number ${MAX_MSGNUM} already, the last one Asterisk can use`);
  if (n >= maxmsg) throw new FolderFullError(dir, maxmsg, `has no room under maxmsg=${maxmsg} (its next message number would be ${n})`);
}

function checkFolderName(what: string, folder: string): void {
  if (!isSyncedSpoolFolder(folder)) throw new SpoolRequestError(`${what}: ${JSON.stringify(folder)} is not a folder vmbridge changes (INBOX, Urgent, Old, Work, Family, Friends)`);
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id === '' || id.length > 200) throw new SpoolRequestError(`message id ${JSON.stringify(id)} is not a usable id`);
}

function checkLimit(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FOLDER_LIMIT) throw new SpoolRequestError(`${what}=${String(value)} is not a whole number from 0 to ${MAX_FOLDER_LIMIT}`);
  return value;
}

function nestedLock(opts: WriteOptions): LockOptions {
  return { ...opts.lock, timeoutMs: opts.nestedLockTimeoutMs ?? DEFAULT_NESTED_LOCK_TIMEOUT_MS };
}

export function linkHint(err: unknown): string {
  // fs.protected_hardlinks lets only a file's owner (or someone who may write it) link it.
  return errnoOf(err) === 'EPERM' ? ' (hard links need vmbridge to run as the spool files\' owner, asterisk.conf runuser, or the files to be group-writable)' : '';
}
