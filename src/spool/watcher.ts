/**
 * Spool watcher: says "mailbox X may have changed" when a `msgNNNN.txt` appears in, moves between
 * or leaves a synced folder of `<spool>/voicemail/<context>/<mailbox>/<Folder>/`. Asterisk renames
 * the audio files into place first and the .txt last, so the .txt is the signal. Calls are
 * debounced per mailbox (trailing edge), so the renames of one message, or a burst, give one call.
 *
 * Why not `fs.watch(dir, { recursive: true })`: on Linux, Node 20 emulates recursion in JavaScript
 * with one inotify watch per file and per directory, set up by a synchronous walk. Measured on
 * 200 mailboxes with 10 messages each: 9,602 watches and 260 ms of blocked event loop at start.
 * inotify watches are limited per user (8,192 on small hosts, and the asterisk user's budget is
 * shared with Asterisk), and that emulation also loses the delete of a file that had been replaced
 * by a rename. So this module watches directories only, and only the ones that matter: the
 * voicemail root, each context, each mailbox and its six synced folders (7 watches per mailbox,
 * none for tmp/, greetings or audio). A directory's inotify watch reports every entry created,
 * renamed or deleted in it, which is all that is needed.
 */
import { watch } from 'node:fs';
import type { Dirent, FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { Logger } from '../log.js';
import { isSafeName } from './names.js';
import { isSyncedSpoolFolder, mailboxKey } from './types.js';
import type { MailboxRef } from './types.js';

export interface SpoolWatcher {
  /** Settles once the first look is done: watches in place, or the voicemail dir found missing. */
  readonly ready: Promise<void>;
  close(): void;
}

export interface WatchSpoolOptions {
  /** Quiet time per mailbox before the call, in ms (default 15). */
  readonly debounceMs?: number;
  /** A mailbox that never goes quiet is still reported this often, in ms (default 1000). */
  readonly maxWaitMs?: number;
  /** How often to look again for a missing voicemail directory or after a watch failed, in ms (default 5000). */
  readonly retryMs?: number;
  readonly log?: Logger;
}

/** Asterisk counts `msg????.txt` case-insensitively; so does this. */
const MESSAGE_TXT = /^msg\d{4}\.txt$/i;

/** 0 = `<spool>/voicemail`, 1 = context, 2 = mailbox, 3 = synced folder. */
type Level = 0 | 1 | 2 | 3;

interface Watched {
  readonly level: Level;
  readonly ref: MailboxRef | undefined;
  /** To notice a directory replaced by another of the same name (the watch follows the old one). */
  readonly ino: number;
  readonly watcher: FSWatcher;
}

interface Pending {
  timer: NodeJS.Timeout;
  readonly first: number;
  path: string;
}

/** Which names are directories worth watching at each level below the root. */
function relevantChild(childLevel: Level, name: string): boolean {
  return childLevel === 3 ? isSyncedSpoolFolder(name) : isSafeName(name);
}

async function dirIno(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

export function watchSpool(
  spoolDir: string,
  onChange: (ref: MailboxRef, path: string) => void,
  opts: WatchSpoolOptions = {},
): SpoolWatcher {
  const root = resolve(spoolDir, 'voicemail');
  const debounceMs = opts.debounceMs ?? 15;
  const maxWaitMs = Math.max(opts.maxWaitMs ?? 1_000, debounceMs);
  const retryMs = opts.retryMs ?? 5_000;
  const log = opts.log;
  const watched = new Map<string, Watched>();
  const pending = new Map<string, Pending>();
  /** Problems already logged, so a retry loop does not flood the log. */
  const reported = new Set<string>();
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let started = false;

  const report = (id: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void => {
    if (reported.has(id)) return;
    reported.add(id);
    log?.[level](fields, msg);
  };

  const fire = (ref: MailboxRef, path: string): void => {
    if (closed) return;
    const key = mailboxKey(ref);
    const now = Date.now();
    const p = pending.get(key);
    if (p) clearTimeout(p.timer);
    const first = p?.first ?? now;
    const delay = Math.max(0, Math.min(debounceMs, first + maxWaitMs - now));
    const timer = setTimeout(() => {
      const last = pending.get(key);
      pending.delete(key);
      try {
        onChange(ref, last?.path ?? path);
      } catch (err) {
        log?.error({ mailbox: key, err }, 'spool change handler failed');
      }
    }, delay);
    if (p) {
      p.timer = timer;
      p.path = path;
    } else pending.set(key, { timer, first, path });
  };

  /** Stops watching `path` and everything below it; reports the mailboxes whose folders went. */
  const unwatch = (path: string, why: string): void => {
    const gone = new Map<string, { ref: MailboxRef; path: string }>();
    for (const [p, w] of watched) {
      if (p !== path && !p.startsWith(`${path}${sep}`)) continue;
      w.watcher.close();
      watched.delete(p);
      if (w.level === 3 && w.ref) gone.set(mailboxKey(w.ref), { ref: w.ref, path: p });
    }
    if (gone.size > 0) log?.debug({ dir: path, why, mailboxes: gone.size }, 'spool directory no longer watched');
    // Its messages left with the directory (or may have changed unseen): let the reconcile look.
    for (const g of gone.values()) fire(g.ref, g.path);
  };

  const schedule = (): void => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void sync(true);
    }, retryMs);
    // The watches keep the process alive while they exist; a retry alone should not.
    retry.unref();
  };

  /** Starts watching one directory; 'new', 'existing' or 'failed'. */
  const add = (path: string, level: Level, ref: MailboxRef | undefined, ino: number): 'new' | 'existing' | 'failed' => {
    if (closed) return 'failed';
    if (watched.has(path)) return 'existing';
    let watcher: FSWatcher;
    try {
      watcher = watch(path, (_event, name) => onEvent(path, name));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return 'failed'; // gone again between listing and watching
      if (e.code === 'ENOSPC') {
        report(`ENOSPC`, 'error', { dir: path, err: e.message }, 'inotify watch limit reached: raise fs.inotify.max_user_watches (sysctl); until then the periodic sweep finds changes');
      } else {
        report(`${e.code ?? 'watch'}:${path}`, 'warn', { dir: path, err: e.message }, 'cannot watch spool directory; retrying');
      }
      schedule();
      return 'failed';
    }
    watcher.on('error', (err: Error) => {
      log?.warn({ dir: path, err: err.message }, 'spool watch failed; watching again');
      unwatch(path, 'watch error');
      schedule();
    });
    watched.set(path, { level, ref, ino, watcher });
    reported.delete(`EACCES:${path}`);
    return 'new';
  };

  /**
   * Watches `path` and the relevant directories below it. The watch is set before the listing, so
   * nothing created in between is missed. `announce`: a newly watched folder that already holds
   * messages is reported (they arrived before the watch could see them).
   */
  const scan = async (path: string, level: Level, ref: MailboxRef | undefined, announce: boolean): Promise<void> => {
    const ino = await dirIno(path);
    if (ino === undefined || closed) return;
    const state = add(path, level, ref, ino);
    if (state === 'failed') return;
    let entries: Dirent[];
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') {
        report(`${e.code ?? 'readdir'}:${path}`, 'warn', { dir: path, err: e.message }, 'cannot list spool directory; retrying');
        schedule();
      }
      return;
    }
    if (closed) return;
    if (level === 3) {
      if (announce && state === 'new' && ref && entries.some((e) => MESSAGE_TXT.test(e.name))) fire(ref, path);
      return;
    }
    const childLevel = (level + 1) as Level;
    for (const e of entries) {
      if (closed) return;
      if (!relevantChild(childLevel, e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
      const childRef = childLevel === 2 ? { context: basename(path), mailbox: e.name } : ref;
      await scan(join(path, e.name), childLevel, childRef, announce);
    }
  };

  /** Something happened to entry `name` of watched directory `dir`. */
  const checkChild = async (dir: string, name: string): Promise<void> => {
    const parent = watched.get(dir);
    if (!parent || parent.level === 3) return;
    const path = join(dir, name);
    const level = (parent.level + 1) as Level;
    const ref = level === 2 ? { context: basename(dir), mailbox: name } : parent.ref;
    const ino = await dirIno(path);
    if (closed) return;
    const known = watched.get(path);
    if (known && known.ino !== ino) unwatch(path, ino === undefined ? 'removed' : 'replaced');
    if (ino !== undefined) await scan(path, level, ref, true);
  };

  const onEvent = (dir: string, name: string | null): void => {
    const node = watched.get(dir);
    if (!node || closed) return;
    if (node.level === 3) {
      // Without a name the kernel could not say which entry (queue overflow): assume a message.
      if (name === null || MESSAGE_TXT.test(name)) fire(node.ref!, name === null ? dir : join(dir, name));
      return;
    }
    if (name === null) {
      void sync(true);
      return;
    }
    if (relevantChild((node.level + 1) as Level, name)) void checkChild(dir, name);
    // The root's own removal or rename is reported to its watch with the root's name.
    if (node.level === 0 && name === basename(root)) void sync(true);
  };

  /** (Re)establishes the watches; safe to call at any time. */
  const sync = async (announce: boolean): Promise<void> => {
    if (closed) return;
    const ino = await dirIno(root);
    if (closed) return;
    const current = watched.get(root);
    if (current && current.ino !== ino) unwatch(root, ino === undefined ? 'removed' : 'replaced');
    if (ino === undefined) {
      started = false;
      report('missing-root', 'info', { dir: root, retryMs }, 'spool voicemail directory does not exist (yet); looking again periodically');
      schedule();
      return;
    }
    await scan(root, 0, undefined, announce);
    if (closed) return;
    reported.delete('missing-root');
    if (!started) {
      started = true;
      log?.info({ dir: root, directories: watched.size }, 'watching the spool');
    }
  };

  const ready = sync(false);

  return {
    ready,
    close() {
      closed = true;
      if (retry) clearTimeout(retry);
      retry = undefined;
      for (const w of watched.values()) w.watcher.close();
      watched.clear();
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
    },
  };
}
