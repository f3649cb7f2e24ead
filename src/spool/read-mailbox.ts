/**
 * Reads one mailbox's spool, without changing anything and without taking Asterisk's folder lock
 * (Asterisk's own MWI count, __has_voicemail, does not lock either). What makes a message, after
 * app_voicemail (leave_voicemail, last_message_index, and the `msgNNNN.*` siblings that rename,
 * copy and delete act on):
 *
 * - `msgNNNN.txt` plus every `msgNNNN.<ext>` beside it (one audio file per recorded format; `WAV` is
 *   wav49 and `wav` is PCM, so the case of the extension is kept).
 * - Asterisk renames the audio into place first and the .txt last, so audio without a .txt is a
 *   message still arriving: ignored without a word. A .txt without audio is not playable (the
 *   ast_fileexists checks skip it) and is reported.
 * - `.lock`, `.lock-XXXXXXXX`, `lock` and `tmp/` are Asterisk's working files and are not looked at.
 *
 * A file that cannot be used becomes a SpoolProblem and the rest is still returned. A directory that
 * exists but cannot be listed throws SpoolError: an unreadable folder is unknown, not empty.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, statSync, type BigIntStats, type Dirent, type Stats } from 'node:fs';
import { lstat, open, readdir, readFile, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SpoolError } from '../errors.js';
import { MAX_ENVELOPE_BYTES, parseEnvelope } from './envelope.js';
import { cachedEnvelope, rememberEnvelope } from './envelope-cache.js';
import { messageIdentity } from './identity.js';
import { mailboxDir } from './names.js';
import { SYNCED_SPOOL_FOLDERS, type AudioFile, type Envelope, type MailboxRef, type SpoolMessage, type SpoolProblem, type SpoolSnapshot, type SyncedSpoolFolder } from './types.js';
import { mapLimit } from '../map-limit.js';

/** `msg` + 4 digits (Asterisk's `msg%04d`) + an extension of letters and digits (format names). */
const MESSAGE_FILE = /^msg(\d{4})\.([A-Za-z0-9]+)$/;

/** Envelope reads in flight per mailbox: enough to overlap I/O, few enough to spare file descriptors. */
const READ_CONCURRENCY = 16;

/**
 * Unchanged reads that make a half-made message (a .txt without audio, audio without a .txt) the
 * folder's real state rather than an Asterisk operation in progress. With the growing pauses
 * between reads that is over 50 ms of no change at all; Asterisk's steps are microseconds apart.
 */
const HALF_MADE_QUIET_READS = 3;

interface Candidate {
  txt?: Dirent;
  txtProblem?: string;
  audio: Dirent[];
  audioProblems: SpoolProblem[];
}

/**
 * The file operations a spool read needs. On a local filesystem they are made synchronously: an
 * lstat of a cached inode costs a few microseconds, while the same call through the thread pool
 * costs ten times that in bookkeeping, and a reconcile stats every message of the mailbox. On a
 * network filesystem (NFS, SMB, FUSE, ...) any call may wait for the network, so there they go
 * through the thread pool and never stall the event loop.
 */
interface SpoolIo {
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<Dirent[]>;
  lstat(path: string): Promise<Stats>;
  /** Undefined: no such entry (most mailboxes lack most folders, so that is not an exception). */
  stamp(path: string): Promise<BigIntStats | undefined>;
  stat(path: string): Promise<Stats>;
  readEnvelope(path: string): Promise<Buffer>;
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function checkEnvelopeFile(path: string, st: Stats): void {
  if (!st.isFile()) throw new SpoolError(path, 'is not a regular file');
  if (st.size > MAX_ENVELOPE_BYTES) throw new SpoolError(path, `${st.size} bytes is too large for a message envelope (at most ${MAX_ENVELOPE_BYTES})`);
}

const asyncIo: SpoolIo = {
  readFile: (path) => readFile(path),
  readdir: (path) => readdir(path, { withFileTypes: true }),
  lstat: (path) => lstat(path),
  stamp: (path) => stat(path, { bigint: true }).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err))),
  stat: (path) => stat(path),
  async readEnvelope(path) {
    const fh = await open(path, OPEN_FLAGS);
    try {
      checkEnvelopeFile(path, await fh.stat());
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  },
};

const syncIo: SpoolIo = {
  readFile: async (path) => readFileSync(path),
  readdir: async (path) => readdirSync(path, { withFileTypes: true }),
  lstat: async (path) => lstatSync(path),
  // Without throwIfNoEntry each missing folder threw an error with its stack, twice per read:
  // at 10,000 mailboxes that was most of the spool side of a quiet pass.
  stamp: async (path) => statSync(path, { bigint: true, throwIfNoEntry: false }),
  stat: async (path) => statSync(path),
  async readEnvelope(path) {
    const fd = openSync(path, OPEN_FLAGS);
    try {
      checkEnvelopeFile(path, fstatSync(fd));
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  },
};

/** statfs f_type of filesystems whose metadata is on this machine's own disks or memory. */
const LOCAL_FILESYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x794c7630, // overlayfs
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
  0x3153464a, // jfs
  0x52654973, // reiserfs
]);

const ioBySpool = new Map<string, Promise<SpoolIo>>();

/** Sync calls for a spool on a local filesystem, the thread pool for anything else (or unknown). */
function ioFor(spoolDir: string): Promise<SpoolIo> {
  let io = ioBySpool.get(spoolDir);
  if (!io) {
    io = statfs(spoolDir).then((fs) => (LOCAL_FILESYSTEMS.has(fs.type >>> 0) ? syncIo : asyncIo), () => asyncIo);
    ioBySpool.set(spoolDir, io);
  }
  return io;
}

/** Reads a file of the spool (a recording), the way the spool's filesystem is best read. */
export async function readSpoolFile(spoolDir: string, path: string): Promise<Buffer> {
  return (await ioFor(spoolDir)).readFile(path);
}

/**
 * Reads the mailbox until it holds still. Asterisk changes a folder in several steps (a renumbering
 * renames a message's audio files, then its .txt; a move copies, then deletes), so a listing taken
 * between two steps can show a message under neither name, and a message missing from a snapshot
 * must never look deleted. A read is taken as settled when
 *  - the mtime of the mailbox directory and of every synced folder is the same before and after it
 *    (nothing was renamed, created or removed meanwhile), and
 *  - it shows no half-made message: a .txt without audio, or audio without its .txt, is what a
 *    folder looks like between the steps of one Asterisk operation. Such a view is read again;
 *    only when the same half-made message is still there after a quiet spell (several reads with no
 *    change at all) is it taken as the folder's real state (reported as a problem, as before).
 * A mailbox that never holds still within the attempts is reported as `settled: false`, and callers
 * make no destructive change from it.
 */
export async function readMailbox(spoolDir: string, ref: MailboxRef, opts: { attempts?: number } = {}): Promise<SpoolSnapshot> {
  const dir = mailboxDir(spoolDir, ref);
  const attempts = opts.attempts ?? 6;
  const io = await ioFor(spoolDir);
  let snapshot: SpoolSnapshot | undefined;
  let quietSince: string | undefined;
  let quietReads = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const before = await folderStamps(io, dir);
    const read = await readMailboxOnce(io, spoolDir, ref);
    snapshot = read.snapshot;
    const after = await folderStamps(io, dir);
    if (before === after) {
      if (!read.halfMade) return { ...snapshot, settled: true };
      quietReads = after === quietSince ? quietReads + 1 : 1;
      quietSince = after;
      if (quietReads >= HALF_MADE_QUIET_READS) return { ...snapshot, settled: true };
    } else {
      quietSince = undefined;
      quietReads = 0;
    }
    await new Promise((r) => setTimeout(r, 10 * attempt));
  }
  return { ...(snapshot as SpoolSnapshot), settled: false };
}

/** One string that changes whenever an entry of the mailbox dir or of a synced folder changes. */
async function folderStamps(io: SpoolIo, dir: string): Promise<string> {
  const paths = [dir, ...SYNCED_SPOOL_FOLDERS.map((f) => join(dir, f))];
  const stamps = await Promise.all(paths.map((p) => io.stamp(p).then(
    (st) => (st ? `${st.ino}:${st.mtimeNs}` : '-'),
    (err: unknown) => (isErrno(err, 'ENOTDIR') ? '-' : `?${errnoText(err)}`),
  )));
  return stamps.join('|');
}

interface OneRead {
  readonly snapshot: SpoolSnapshot;
  /** A message was seen half-made: a .txt without audio, or audio without a .txt. */
  readonly halfMade: boolean;
}

async function readMailboxOnce(io: SpoolIo, spoolDir: string, ref: MailboxRef): Promise<OneRead> {
  const dir = mailboxDir(spoolDir, ref);
  // The mailbox comes from voicemail.conf, not from a listing that skips links: its context and
  // mailbox folders are checked here, or a link would make a folder outside the spool look like
  // this mailbox. Unknown, not empty: an empty mailbox would read as "every voicemail deleted".
  for (const path of [dirname(dir), dir]) {
    const st = await io.lstat(path).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
    if (st?.isSymbolicLink()) throw new SpoolError(path, 'is a symbolic link; not followed: vmbridge reads nothing outside the spool through a link');
  }
  const entries = await listDir(io, dir);
  const problems: SpoolProblem[] = [];
  const warnings: SpoolProblem[] = [];
  if (entries === undefined) {
    // No voicemail yet: Asterisk creates the directory on demand. But a spool without voicemail/ at
    // all is a wrong path or a missing mount, and every mailbox looking empty would read as "all
    // deleted": that is unknown, not empty.
    const root = join(spoolDir, 'voicemail');
    const exists = await io.stat(root).then(() => true, (err: unknown) => !isErrno(err, 'ENOENT'));
    if (!exists) throw new SpoolError(root, 'does not exist: wrong spool directory, or the spool is not mounted');
    return { snapshot: { ref, messages: [], problems, warnings, settled: true }, halfMade: false };
  }
  const seen = { halfMade: false };

  const byName = new Map(entries.map((e) => [e.name, e]));
  const perFolder = await Promise.all(
    SYNCED_SPOOL_FOLDERS.map(async (folder): Promise<SpoolMessage[]> => {
      const entry = byName.get(folder);
      if (entry === undefined) return []; // a folder Asterisk has not needed yet
      const folderPath = join(dir, folder);
      if (entry.isSymbolicLink()) {
        problems.push({ path: folderPath, problem: 'is a symbolic link; not followed, folder skipped' });
        return [];
      }
      if (!entry.isDirectory()) {
        problems.push({ path: folderPath, problem: 'is not a directory; folder skipped' });
        return [];
      }
      return readFolder(io, folderPath, folder, { problems, warnings }, seen);
    }),
  );
  // Folders and messages are read concurrently; report problems in a stable order.
  problems.sort(byPath);
  warnings.sort(byPath);
  return { snapshot: { ref, messages: perFolder.flat(), problems, warnings, settled: true }, halfMade: seen.halfMade };
}

const byPath = (a: SpoolProblem, b: SpoolProblem): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

interface Findings {
  /** Files not used. */
  readonly problems: SpoolProblem[];
  /** Messages used in part. */
  readonly warnings: SpoolProblem[];
}

async function readFolder(io: SpoolIo, folderPath: string, folder: SyncedSpoolFolder, findings: Findings, seen: { halfMade: boolean }): Promise<SpoolMessage[]> {
  const { problems } = findings;
  const entries = await listDir(io, folderPath);
  if (entries === undefined) return []; // removed since the mailbox was listed

  const candidates = new Map<number, Candidate>();
  for (const entry of entries) {
    const m = MESSAGE_FILE.exec(entry.name);
    if (!m) continue;
    const msgnum = Number(m[1]);
    const ext = m[2] ?? '';
    let c = candidates.get(msgnum);
    if (!c) candidates.set(msgnum, (c = { audio: [], audioProblems: [] }));
    const path = join(folderPath, entry.name);
    if (ext === 'txt') {
      if (entry.isSymbolicLink()) c.txtProblem = 'is a symbolic link; not followed, message skipped';
      else if (!entry.isFile()) c.txtProblem = 'is not a regular file; message skipped';
      else c.txt = entry;
    } else if (entry.isSymbolicLink()) {
      c.audioProblems.push({ path, problem: 'is a symbolic link; not followed, audio file skipped' });
    } else if (!entry.isFile()) {
      c.audioProblems.push({ path, problem: 'is not a regular file; audio file skipped' });
    } else {
      c.audio.push(entry);
    }
  }

  const jobs: Array<{ msgnum: number; txt: string; audio: Dirent[] }> = [];
  for (const [msgnum, c] of [...candidates].sort((a, b) => a[0] - b[0])) {
    const txtPath = join(folderPath, `msg${String(msgnum).padStart(4, '0')}.txt`);
    if (c.txt === undefined && c.txtProblem === undefined) {
      // Audio still arriving, a renumbering half done, or a leftover.
      if (c.audio.length > 0) seen.halfMade = true;
      continue;
    }
    problems.push(...c.audioProblems);
    if (c.txtProblem !== undefined) {
      problems.push({ path: txtPath, problem: c.txtProblem });
      continue;
    }
    if (c.audio.length === 0) {
      seen.halfMade = true;
      problems.push({ path: txtPath, problem: 'has no audio file beside it; not yet a message (Asterisk writes the audio first), skipped' });
      continue;
    }
    jobs.push({ msgnum, txt: txtPath, audio: c.audio });
  }

  const results = await mapLimit(jobs, READ_CONCURRENCY, (job) => readMessage(io, folderPath, folder, job.msgnum, job.txt, job.audio, findings));
  return results.filter((m): m is SpoolMessage => m !== undefined);
}

async function readMessage(
  io: SpoolIo,
  folderPath: string,
  folder: SyncedSpoolFolder,
  msgnum: number,
  txtPath: string,
  audioEntries: readonly Dirent[],
  { problems, warnings }: Findings,
): Promise<SpoolMessage | undefined> {
  let envelope: Envelope | undefined;
  let st: Stats | undefined;
  try {
    st = await io.lstat(txtPath);
    envelope = cachedEnvelope(st);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined; // moved or removed since the folder was listed
  }
  if (!envelope) {
    let data: Buffer;
    try {
      data = await io.readEnvelope(txtPath);
    } catch (err) {
      problems.push({ path: txtPath, problem: err instanceof SpoolError ? stripPath(err, txtPath) : `cannot be read: ${errnoText(err)}` });
      return undefined;
    }
    try {
      envelope = parseEnvelope(data, txtPath, st ? { fileTime: Math.floor(st.mtimeMs / 1000) } : {});
    } catch (err) {
      problems.push({ path: txtPath, problem: err instanceof SpoolError ? stripPath(err, txtPath) : String(err) });
      return undefined;
    }
    if (st) rememberEnvelope(st, envelope);
  }
  if (envelope.problems) warnings.push({ path: txtPath, problem: envelope.problems.join('; ') });

  // The folder listing already says each sibling is a regular file (not a link); the email
  // builder reports one that disappears before it is read.
  const audio: AudioFile[] = audioEntries
    .map((entry) => ({ ext: entry.name.slice(entry.name.indexOf('.') + 1), path: join(folderPath, entry.name) }))
    .sort((a, b) => (a.ext < b.ext ? -1 : a.ext > b.ext ? 1 : 0));
  const { id, derived } = messageIdentity(envelope);
  return { id, derivedId: derived, folder, msgnum, txtPath, audio, envelope };
}

/** Entries of a directory, or undefined if it does not exist. Any other failure throws SpoolError. */
async function listDir(io: SpoolIo, path: string): Promise<Dirent[] | undefined> {
  try {
    return await io.readdir(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new SpoolError(path, `cannot be listed: ${errnoText(err)}`, { cause: err });
  }
}

/** SpoolError messages start with the path; the problem already carries it. */
function stripPath(err: SpoolError, path: string): string {
  return err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && (err as { code?: unknown }).code === code;
}

function errnoText(err: unknown): string {
  if (isErrno(err, 'ELOOP')) return 'is a symbolic link; not followed';
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.message : String(err);
}
