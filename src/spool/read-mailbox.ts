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
import { constants, type Dirent, type Stats } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SpoolError } from '../errors.js';
import { MAX_ENVELOPE_BYTES, parseEnvelope } from './envelope.js';
import { messageIdentity } from './identity.js';
import { mailboxDir } from './names.js';
import { SYNCED_SPOOL_FOLDERS, type AudioFile, type Envelope, type MailboxRef, type SpoolMessage, type SpoolProblem, type SpoolSnapshot, type SyncedSpoolFolder } from './types.js';

/** `msg` + 4 digits (Asterisk's `msg%04d`) + an extension of letters and digits (format names). */
const MESSAGE_FILE = /^msg(\d{4})\.([A-Za-z0-9]+)$/;

/** Envelope reads in flight per mailbox: enough to overlap I/O, few enough to spare file descriptors. */
const READ_CONCURRENCY = 16;

interface Candidate {
  txt?: Dirent;
  txtProblem?: string;
  audio: Dirent[];
  audioProblems: SpoolProblem[];
}

/**
 * Reads the mailbox until it holds still: the mtime of the mailbox directory and of every synced
 * folder must be the same before and after the read. Asterisk renames files while it renumbers a
 * folder or moves a message (copy, then delete), and a directory listing taken during a rename may
 * show the file under neither name; a message missing from one snapshot must never look deleted.
 * A mailbox that never holds still within the attempts is reported as `settled: false`, and callers
 * make no destructive change from it.
 */
export async function readMailbox(spoolDir: string, ref: MailboxRef, opts: { attempts?: number } = {}): Promise<SpoolSnapshot> {
  const dir = mailboxDir(spoolDir, ref);
  const attempts = opts.attempts ?? 6;
  let snapshot: SpoolSnapshot | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const before = await folderStamps(dir);
    snapshot = await readMailboxOnce(spoolDir, ref);
    const after = await folderStamps(dir);
    if (before === after) return { ...snapshot, settled: true };
    await new Promise((r) => setTimeout(r, 10 * attempt));
  }
  return { ...(snapshot as SpoolSnapshot), settled: false };
}

/** One string that changes whenever an entry of the mailbox dir or of a synced folder changes. */
async function folderStamps(dir: string): Promise<string> {
  const paths = [dir, ...SYNCED_SPOOL_FOLDERS.map((f) => join(dir, f))];
  const stamps = await Promise.all(paths.map((p) => stat(p, { bigint: true }).then(
    (st) => `${st.ino}:${st.mtimeNs}`,
    (err: unknown) => (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') ? '-' : `?${errnoText(err)}`),
  )));
  return stamps.join('|');
}

async function readMailboxOnce(spoolDir: string, ref: MailboxRef): Promise<SpoolSnapshot> {
  const dir = mailboxDir(spoolDir, ref);
  const entries = await listDir(dir);
  const problems: SpoolProblem[] = [];
  if (entries === undefined) {
    // No voicemail yet: Asterisk creates the directory on demand. But a spool without voicemail/ at
    // all is a wrong path or a missing mount, and every mailbox looking empty would read as "all
    // deleted": that is unknown, not empty.
    const root = join(spoolDir, 'voicemail');
    const exists = await stat(root).then(() => true, (err: unknown) => !isErrno(err, 'ENOENT'));
    if (!exists) throw new SpoolError(root, 'does not exist: wrong spool directory, or the spool is not mounted');
    return { ref, messages: [], problems, settled: true };
  }

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
      return readFolder(folderPath, folder, problems);
    }),
  );
  // Folders and messages are read concurrently; report problems in a stable order.
  problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ref, messages: perFolder.flat(), problems, settled: true };
}

async function readFolder(folderPath: string, folder: SyncedSpoolFolder, problems: SpoolProblem[]): Promise<SpoolMessage[]> {
  const entries = await listDir(folderPath);
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
    if (c.txt === undefined && c.txtProblem === undefined) continue; // audio still arriving, or a leftover
    problems.push(...c.audioProblems);
    if (c.txtProblem !== undefined) {
      problems.push({ path: txtPath, problem: c.txtProblem });
      continue;
    }
    if (c.audio.length === 0) {
      problems.push({ path: txtPath, problem: 'has no audio file beside it; not yet a message (Asterisk writes the audio first), skipped' });
      continue;
    }
    jobs.push({ msgnum, txt: txtPath, audio: c.audio });
  }

  const results = await mapLimit(jobs, READ_CONCURRENCY, (job) => readMessage(folderPath, folder, job.msgnum, job.txt, job.audio, problems));
  return results.filter((m): m is SpoolMessage => m !== undefined);
}

/**
 * Parsed envelopes by file identity. A reconcile reads the whole mailbox each time; with this, an
 * unchanged message costs one lstat instead of open, read, parse and close. Keyed by device and
 * inode (a renumbering rename keeps both) and checked against size and mtime (a rewrite changes
 * them), so a stale entry is never used.
 */
const envelopeCache = new Map<string, { size: number; mtimeMs: number; envelope: Envelope }>();
const ENVELOPE_CACHE_MAX = 200_000;

function remember(key: string, entry: { size: number; mtimeMs: number; envelope: Envelope }): void {
  if (envelopeCache.size >= ENVELOPE_CACHE_MAX) {
    const oldest = envelopeCache.keys().next();
    if (!oldest.done) envelopeCache.delete(oldest.value);
  }
  envelopeCache.set(key, entry);
}

async function readMessage(
  folderPath: string,
  folder: SyncedSpoolFolder,
  msgnum: number,
  txtPath: string,
  audioEntries: readonly Dirent[],
  problems: SpoolProblem[],
): Promise<SpoolMessage | undefined> {
  let envelope: Envelope | undefined;
  let key: string | undefined;
  let st: Stats | undefined;
  try {
    st = await lstat(txtPath);
    key = `${st.dev}:${st.ino}`;
    const hit = st.isFile() ? envelopeCache.get(key) : undefined;
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) envelope = hit.envelope;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined; // moved or removed since the folder was listed
  }
  if (!envelope) {
    let data: Buffer;
    try {
      data = await readEnvelopeFile(txtPath);
    } catch (err) {
      problems.push({ path: txtPath, problem: err instanceof SpoolError ? stripPath(err, txtPath) : `cannot be read: ${errnoText(err)}` });
      return undefined;
    }
    try {
      envelope = parseEnvelope(data, txtPath);
    } catch (err) {
      problems.push({ path: txtPath, problem: err instanceof SpoolError ? stripPath(err, txtPath) : String(err) });
      return undefined;
    }
    if (key && st) remember(key, { size: st.size, mtimeMs: st.mtimeMs, envelope });
  }

  // The folder listing already says each sibling is a regular file (not a link); the email
  // builder reports one that disappears before it is read.
  const audio: AudioFile[] = audioEntries
    .map((entry) => ({ ext: entry.name.slice(entry.name.indexOf('.') + 1), path: join(folderPath, entry.name) }))
    .sort((a, b) => (a.ext < b.ext ? -1 : a.ext > b.ext ? 1 : 0));
  const { id, derived } = messageIdentity(envelope);
  return { id, derivedId: derived, folder, msgnum, txtPath, audio, envelope };
}

async function readEnvelopeFile(path: string): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SpoolError(path, 'is not a regular file');
    if (st.size > MAX_ENVELOPE_BYTES) throw new SpoolError(path, `${st.size} bytes is too large for a message envelope (at most ${MAX_ENVELOPE_BYTES})`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Entries of a directory, or undefined if it does not exist. Any other failure throws SpoolError. */
async function listDir(path: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new SpoolError(path, `cannot be listed: ${errnoText(err)}`, { cause: err });
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
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
