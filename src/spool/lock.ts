/**
 * Asterisk's per-folder lock, taken the same way Asterisk takes it (asterisk.conf `lockmode`), so
 * that vmbridge and app_voicemail never change one voicemail folder at the same time.
 *
 * - `lockfile` (the default): a hard-link lock. A uniquely named `.lock-XXXXXXXX` is created
 *   exclusively and `link()`ed to `.lock`; whoever's link succeeds holds the folder. Asterisk's own
 *   lock files are empty; vmbridge writes `vmbridge <host> <pid>` into its own, which is how a
 *   restarted vmbridge recognises (and only ever removes) locks that a dead vmbridge left behind.
 * - `flock`: `<folder>/lock` (mode 0600) locked with flock(2). Node has no flock(), so the
 *   util-linux `flock` command takes the lock on a file descriptor vmbridge opened and hands to it;
 *   the lock belongs to the open file, so it stays held after the command exits, until vmbridge
 *   unlinks the file and closes the descriptor (Asterisk's unlock order). See docs/spool-writes.md.
 *
 * Asterisk gives up after 5 s and, if it was saving a new recording, throws the recording away.
 * So vmbridge waits at most 4 s by default and keeps every hold as short as it can; the longest hold
 * and the time spent waiting are kept in lockStats() for the benchmark and the metrics.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, renameSync, writeSync, type Dirent, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LockMode } from '../config/asterisk-conf.js';
import { VmbridgeError } from '../errors.js';
import { errText, errnoOf, lstatOrUndefined, unlinkQuietly } from './fs-quiet.js';

export type { LockMode };

/** Asterisk's own limit (ast_lock_path_lockfile, ast_lock_path_flock): after this it gives up. */
export const ASTERISK_LOCK_TIMEOUT_MS = 5_000;
/** vmbridge gives up earlier than Asterisk: when both wait for one folder, Asterisk should win. */
export const DEFAULT_LOCK_TIMEOUT_MS = 4_000;
/** Retry sleeps grow from 1 ms to 20 ms: quick for short holds, cheap for long ones. */
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 20;
/** A vmbridge marker is one short line; anything longer is not one. */
const MAX_MARKER_BYTES = 256;

const LOCK_NAME = '.lock';
const FLOCK_NAME = 'lock';
/** Asterisk names its temporary lock files `.lock-%08lx`; vmbridge uses the same shape. */
const TEMP_LOCK = /^\.lock-[0-9a-f]{8}$/;
const MARKER = /^vmbridge (\S+) (\d+)\n?$/;
/** Exit status asked of flock(1) for "timed out", to tell it from its other failures. */
const FLOCK_TIMEOUT_STATUS = 75;

// ---------------------------------------------------------------------------------------------
// Errors

/** The folder stayed locked by someone else for the whole timeout. Nothing was changed. */
export class LockTimeoutError extends VmbridgeError {
  readonly folder: string;
  readonly waitedMs: number;
  /** Who held it, as far as can be told: `Asterisk`, `vmbridge on <host>, pid <pid>`, or `unknown`. */
  readonly holder: string;
  constructor(folder: string, waitedMs: number, holder: string) {
    super('SPOOL_LOCKED', `${folder}: still locked after ${Math.round(waitedMs)} ms (held by ${holder}); nothing was changed, try again later`);
    this.folder = folder;
    this.waitedMs = waitedMs;
    this.holder = holder;
  }
}

/** The lock could not be taken for a reason other than someone holding it (named in the message). */
export class LockError extends VmbridgeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('SPOOL_LOCK', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** lockmode=flock, but the flock(1) command is missing or is not util-linux's. */
export class FlockUnavailableError extends VmbridgeError {
  readonly command: string;
  constructor(command: string, detail: string, options?: { cause?: unknown }) {
    super(
      'SPOOL_FLOCK_UNAVAILABLE',
      `asterisk.conf has lockmode=flock, but ${JSON.stringify(command)} cannot take the lock (${detail}). ` +
        "Install util-linux's flock (Debian and Ubuntu: it is in the util-linux package; Alpine: apk add util-linux), " +
        'or set lockmode=lockfile in the [options] section of asterisk.conf and restart Asterisk.',
      options,
    );
    this.command = command;
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

export interface LockStats {
  /** Locks taken and given back. */
  readonly holds: number;
  /** The longest time one lock was held. This is what must stay far below Asterisk's 5 s. */
  readonly maxHoldMs: number;
  readonly totalHoldMs: number;
  /** Time spent waiting for locks (including the flock command's start-up in flock mode). */
  readonly totalWaitMs: number;
  readonly maxWaitMs: number;
  readonly timeouts: number;
  /** Locks that were gone, or someone else's, when vmbridge went to release them. */
  readonly lost: number;
}

const stats = { holds: 0, maxHoldMs: 0, totalHoldMs: 0, totalWaitMs: 0, maxWaitMs: 0, timeouts: 0, lost: 0 };

export function lockStats(): LockStats {
  return { ...stats };
}

export function resetLockStats(): void {
  Object.assign(stats, { holds: 0, maxHoldMs: 0, totalHoldMs: 0, totalWaitMs: 0, maxWaitMs: 0, timeouts: 0, lost: 0 });
}

function recordWait(ms: number): void {
  stats.totalWaitMs += ms;
  if (ms > stats.maxWaitMs) stats.maxWaitMs = ms;
}

// ---------------------------------------------------------------------------------------------
// Taking and releasing

export interface LockOptions {
  /** How long to wait for a held lock. Default 4 s; always kept below Asterisk's 5 s. */
  readonly timeoutMs?: number;
  /** The flock(1) command for lockmode=flock. Default `flock` from PATH. */
  readonly flockCommand?: string;
}

export interface FolderLock {
  readonly folderDir: string;
  readonly mode: LockMode;
  /**
   * Gives the lock back. Synchronous, so nothing can run between the last change and the unlock.
   * Returns false if the lock was no longer vmbridge's (removed by hand, say); it is then left alone.
   */
  release(): boolean;
}

/** `vmbridge <host> <pid>\n`: what vmbridge writes into its lock files. */
export function lockMarker(host: string = hostname(), pid: number = process.pid): string {
  return `vmbridge ${host} ${pid}\n`;
}

export function parseLockMarker(text: string): { host: string; pid: number } | undefined {
  const m = MARKER.exec(text);
  return m ? { host: m[1] ?? '', pid: Number(m[2]) } : undefined;
}

/** `.lock` paths this process holds right now: its own PID in a marker is stale unless listed here. */
const heldHere = new Set<string>();

/** Takes the folder's lock, waiting up to the timeout. Throws LockTimeoutError or LockError. */
export async function lockFolder(folderDir: string, mode: LockMode, opts: LockOptions = {}): Promise<FolderLock> {
  const timeoutMs = Math.min(opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, ASTERISK_LOCK_TIMEOUT_MS - 1);
  const started = performance.now();
  let releaseFn: () => boolean;
  try {
    releaseFn = mode === 'flock' ? await takeFlock(folderDir, timeoutMs, opts.flockCommand ?? 'flock') : await takeLockfile(folderDir, timeoutMs);
  } catch (err) {
    recordWait(performance.now() - started);
    if (err instanceof LockTimeoutError) stats.timeouts++;
    throw err;
  }
  const acquired = performance.now();
  recordWait(acquired - started);
  let released = false;
  return {
    folderDir,
    mode,
    release(): boolean {
      if (released) return true;
      released = true;
      const ok = releaseFn();
      const held = performance.now() - acquired;
      stats.holds++;
      stats.totalHoldMs += held;
      if (held > stats.maxHoldMs) stats.maxHoldMs = held;
      if (!ok) stats.lost++;
      return ok;
    },
  };
}

/**
 * Runs `fn` holding the folder's lock. Keep `fn` short: plan before, change inside. When two
 * folders are needed, nest the calls source first, then destination (Asterisk's order), and give
 * the inner one a shorter timeout so the outer hold stays well below Asterisk's 5 s.
 */
export async function withFolderLock<T>(folderDir: string, mode: LockMode, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await lockFolder(folderDir, mode, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

// ---- lockmode = lockfile

const createFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** Creates `.lock-XXXXXXXX` holding the marker; returns its path. */
function createTempLock(folderDir: string): { path: string } {
  for (;;) {
    const path = join(folderDir, `.lock-${randomBytes(4).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(path, createFlags, 0o666);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') continue; // another locker drew the same name
      throw new LockError(folderDir, errnoOf(err) === 'ENOENT' ? 'the folder does not exist' : `cannot create a lock file: ${errText(err)}`, { cause: err });
    }
    try {
      writeSync(fd, lockMarker());
      return { path };
    } catch (err) {
      unlinkQuietly(path);
      throw new LockError(folderDir, `cannot write the lock file: ${errText(err)}`, { cause: err });
    } finally {
      closeSync(fd);
    }
  }
}

async function takeLockfile(folderDir: string, timeoutMs: number): Promise<() => boolean> {
  const lockPath = join(folderDir, LOCK_NAME);
  const started = performance.now();
  const temp = createTempLock(folderDir);
  try {
    let delay = FIRST_RETRY_MS;
    for (;;) {
      try {
        linkSync(temp.path, lockPath);
        break;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw new LockError(folderDir, `cannot link ${LOCK_NAME}: ${errText(err)}`, { cause: err });
        const waited = performance.now() - started;
        if (waited >= timeoutMs) throw new LockTimeoutError(folderDir, waited, describeHolder(lockPath));
        await sleep(Math.min(delay, Math.max(1, timeoutMs - waited)));
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    }
  } finally {
    // The temporary name goes whether or not the link worked (Asterisk does the same).
    unlinkQuietly(temp.path);
  }
  // Recorded after the temporary name is gone: that changed the file's ctime, so this is the final one.
  const mine = identityOf(lockPath);
  const key = resolve(lockPath);
  heldHere.add(key);
  return () => {
    heldHere.delete(key);
    return unlinkIfMine(lockPath, mine, true);
  };
}

/** Who holds a `.lock`, for the timeout message: an empty file is Asterisk's. */
function describeHolder(lockPath: string): string {
  const text = readSmall(lockPath);
  if (text === undefined) return 'unknown';
  if (text === '') return 'Asterisk (an empty .lock; if no Asterisk is running, it is stale and must be removed by hand)';
  const marker = parseLockMarker(text);
  return marker ? `vmbridge on ${marker.host}, pid ${marker.pid}` : 'unknown (a .lock with unexpected content)';
}

// ---- lockmode = flock

const flockOpenFlags = constants.O_WRONLY | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);

async function takeFlock(folderDir: string, timeoutMs: number, command: string): Promise<() => boolean> {
  const path = join(folderDir, FLOCK_NAME);
  const started = performance.now();
  for (;;) {
    // Asterisk's checks: never a symbolic link, never a file with other names.
    const before = lstatOrUndefined(path);
    if (before?.isSymbolicLink()) throw new LockError(path, 'is a symbolic link; refusing to lock through it');
    if (before !== undefined && before.nlink > 1) throw new LockError(path, `has ${before.nlink} hard links; refusing to lock it`);
    let fd: number;
    try {
      fd = openSync(path, flockOpenFlags, 0o600);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ELOOP') throw new LockError(path, 'is a symbolic link; refusing to lock through it', { cause: err });
      throw new LockError(folderDir, code === 'ENOENT' ? 'the folder does not exist' : `cannot open ${FLOCK_NAME}: ${errText(err)}`, { cause: err });
    }
    let keep = false;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new LockError(path, 'is not a regular file');
      if (st.nlink > 1) throw new LockError(path, `has ${st.nlink} hard links; refusing to lock it`);
      const remaining = timeoutMs - (performance.now() - started);
      const outcome = await runFlock(command, fd, remaining);
      const waited = performance.now() - started;
      if (outcome === 'timeout') throw new LockTimeoutError(folderDir, waited, 'another process (flock)');
      // Whoever held it may have unlinked the file before closing it (Asterisk's unlock does), and
      // someone else may have created and locked a new one since: then this lock guards nothing.
      const now = lstatOrUndefined(path);
      if (now !== undefined && now.dev === st.dev && now.ino === st.ino) {
        keep = true;
        const mine = identityOf(path);
        return () => {
          // Asterisk's order: unlink, then close (closing is what lets the next waiter in).
          const ok = unlinkIfMine(path, mine, false);
          closeSync(fd);
          return ok;
        };
      }
      if (waited >= timeoutMs) throw new LockTimeoutError(folderDir, waited, 'another process (flock)');
    } finally {
      if (!keep) closeSync(fd);
    }
  }
}

/**
 * Runs `flock -x -w <s> 3` with the open lock file as its descriptor 3. flock(2) locks belong to
 * the open file, which this process shares with the command, so the lock outlives the command.
 */
function runFlock(command: string, fd: number, remainingMs: number): Promise<'locked' | 'timeout'> {
  const wait = remainingMs > 0 ? ['-w', (remainingMs / 1000).toFixed(3)] : ['-n'];
  return new Promise((resolvePromise, reject) => {
    let stderr = '';
    const child = spawn(command, ['-x', ...wait, '-E', String(FLOCK_TIMEOUT_STATUS), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 2000) stderr += d;
    });
    child.on('error', (err) => reject(new FlockUnavailableError(command, errText(err), { cause: err })));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise('locked');
      else if (code === FLOCK_TIMEOUT_STATUS) resolvePromise('timeout');
      else reject(new FlockUnavailableError(command, signal ? `killed by ${signal}` : `exit status ${code}: ${stderr.trim() || 'no message'}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Stale locks left by a dead vmbridge

export interface StaleLockReport {
  /** `.lock` files of dead vmbridge processes on this host, taken over and removed. */
  readonly removed: readonly string[];
  /** Leftover `.lock-XXXXXXXX` files of dead vmbridge processes, removed. */
  readonly removedTemp: readonly string[];
  /** Folders handed to `repair` while their stale lock was held. */
  readonly repaired: readonly string[];
  /** Locks left alone that an administrator may want to know about (Asterisk's, other hosts'). */
  readonly kept: ReadonlyArray<{ readonly path: string; readonly holder: string; readonly ageMs: number }>;
  /** Folders that could not be looked at, or repairs that failed. */
  readonly problems: ReadonlyArray<{ readonly path: string; readonly problem: string }>;
}

export interface ClearStaleOptions {
  /** The host name in markers that counts as this host. Default os.hostname(). */
  readonly host?: string;
  /**
   * Called with the folder while vmbridge holds it in place of the dead process, before the lock is
   * given back: the dead process may have stopped half way through a change, and nobody else must
   * see the folder before that is tidied.
   */
  readonly repair?: (folderDir: string) => void | Promise<void>;
  /** Whether a PID is alive. Default: signal 0 (EPERM counts as alive). */
  readonly isAlive?: (pid: number) => boolean;
}

/**
 * Run at start-up, before any other spool work: finds every `.lock` in `<spool>/voicemail/<context>/<mailbox>/<folder>/`
 * that holds vmbridge's marker for THIS host and a PID that is no longer running, and removes it
 * (after `repair`, if given). Leftover `.lock-XXXXXXXX` files with such a marker go too. Empty
 * `.lock` files are Asterisk's and are never touched; nor are other hosts' (their PIDs mean nothing
 * here). Symbolic links are not followed.
 */
export async function clearOwnStaleLocks(spoolDir: string, opts: ClearStaleOptions = {}): Promise<StaleLockReport> {
  const host = opts.host ?? hostname();
  const isAlive = opts.isAlive ?? pidAlive;
  const report = { removed: [] as string[], removedTemp: [] as string[], repaired: [] as string[], kept: [] as Array<{ path: string; holder: string; ageMs: number }>, problems: [] as Array<{ path: string; problem: string }> };

  const stale = (path: string, text: string | undefined): boolean => {
    const marker = text === undefined ? undefined : parseLockMarker(text);
    if (!marker || marker.host !== host) return false;
    // The same PID as this process is stale unless this process really holds it (after a restart
    // in a container, vmbridge often gets the PID its previous run had).
    if (marker.pid === process.pid) return !heldHere.has(resolve(path));
    return !isAlive(marker.pid);
  };

  for (const folderDir of await folderDirs(resolve(spoolDir, 'voicemail'), report.problems)) {
    let entries: Dirent[];
    try {
      entries = await readdir(folderDir, { withFileTypes: true });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') report.problems.push({ path: folderDir, problem: `cannot be listed: ${errText(err)}` });
      continue;
    }
    const lockEntry = entries.find((e) => e.name === LOCK_NAME);
    if (lockEntry?.isFile()) {
      const lockPath = join(folderDir, LOCK_NAME);
      const st = lstatOrUndefined(lockPath);
      const text = readSmall(lockPath);
      if (st?.isFile() && stale(lockPath, text)) {
        try {
          await takeOverAndClear(folderDir, st, opts.repair, report);
        } catch (err) {
          report.problems.push({ path: lockPath, problem: errText(err) });
        }
      } else if (st !== undefined && text !== undefined) {
        report.kept.push({ path: lockPath, holder: text === '' ? 'Asterisk' : (describeMarker(text) ?? 'unknown'), ageMs: Math.max(0, Date.now() - st.mtimeMs) });
      }
    }
    for (const e of entries) {
      if (!TEMP_LOCK.test(e.name) || !e.isFile()) continue;
      const path = join(folderDir, e.name);
      if (stale(path, readSmall(path)) && unlinkQuietly(path)) report.removedTemp.push(path);
    }
  }
  return report;
}

/**
 * Replaces the dead process's `.lock` with one of ours in a single rename, so the folder is never
 * unlocked in between; then repairs the folder and unlocks it.
 */
async function takeOverAndClear(folderDir: string, stale: Stats, repair: ClearStaleOptions['repair'], report: { removed: string[]; repaired: string[]; problems: Array<{ path: string; problem: string }> }): Promise<void> {
  const lockPath = join(folderDir, LOCK_NAME);
  const temp = createTempLock(folderDir);
  const now = lstatOrUndefined(lockPath);
  if (now === undefined || now.dev !== stale.dev || now.ino !== stale.ino) {
    unlinkQuietly(temp.path); // someone else dealt with it meanwhile
    return;
  }
  renameSync(temp.path, lockPath);
  const mine = identityOf(lockPath);
  const key = resolve(lockPath);
  heldHere.add(key);
  try {
    if (repair) {
      try {
        await repair(folderDir);
        report.repaired.push(folderDir);
      } catch (err) {
        report.problems.push({ path: folderDir, problem: `repair failed: ${errText(err)}` });
      }
    }
  } finally {
    heldHere.delete(key);
    if (unlinkIfMine(lockPath, mine, true)) report.removed.push(lockPath);
  }
}

/** `<voicemail>/<context>/<mailbox>/<folder>` directories, not following symbolic links. */
async function folderDirs(root: string, problems: Array<{ path: string; problem: string }>): Promise<string[]> {
  const out: string[] = [];
  const subdirs = async (dir: string): Promise<string[]> => {
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name)).sort();
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') problems.push({ path: dir, problem: `cannot be listed: ${errText(err)}` });
      return [];
    }
  };
  for (const ctx of await subdirs(root)) {
    for (const box of await subdirs(ctx)) out.push(...(await subdirs(box)));
  }
  return out;
}

function describeMarker(text: string): string | undefined {
  const m = parseLockMarker(text);
  return m ? `vmbridge on ${m.host}, pid ${m.pid}` : undefined;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// Small file helpers (synchronous on purpose: they run while a lock is held, or decide about one)

/** Enough to tell one file from another that later got the same inode number. */
interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly ctimeNs: bigint;
  readonly birthtimeNs: bigint;
}

function identityOf(path: string): FileIdentity | undefined {
  try {
    const st = lstatSync(path, { bigint: true });
    return { dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs, birthtimeNs: st.birthtimeNs };
  } catch {
    return undefined;
  }
}

/**
 * Unlinks `path` only if it is still the file vmbridge locked. Inode numbers are reused at once on
 * most file systems (a lock removed by hand, then Asterisk's next lock file, can get the same
 * number), so the ctime and birth time must match too, and a `.lock` must still hold our marker.
 */
function unlinkIfMine(path: string, mine: FileIdentity | undefined, checkMarker: boolean): boolean {
  const now = identityOf(path);
  if (mine === undefined || now === undefined) return false;
  if (now.dev !== mine.dev || now.ino !== mine.ino || now.ctimeNs !== mine.ctimeNs || now.birthtimeNs !== mine.birthtimeNs) return false;
  if (checkMarker && readSmall(path) !== lockMarker()) return false;
  return unlinkQuietly(path);
}

/** The first bytes of a small regular file, without following symbolic links or blocking on FIFOs. */
function readSmall(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(MAX_MARKER_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return n > MAX_MARKER_BYTES ? '\u0000' : buf.subarray(0, n).toString('utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
