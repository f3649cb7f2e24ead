/**
 * What vmbridge's own APPENDs mean to an IDLE session. An IDLE session is told of every new
 * message, vmbridge's own included; a reconcile queued for each of those would hold the mailbox's
 * lock while the next voicemail waits for it, and find nothing to do. So:
 *
 * - the reconcile notes the count its command session saw right after its own APPEND (only when
 *   nothing else arrived meanwhile), and an EXISTS with that count queues nothing at once;
 * - every own APPEND is announced (noteOwnAppend), and the IDLE watcher of that account answers
 *   with one look at the mailbox once the server's notification delay has passed (see
 *   idle-watcher.ts). That look catches what the IDLE session cannot be told: an email a mail
 *   client (a filter rule, say) moved, read or deleted before the session took it into its view
 *   comes and goes between two of its syncs, and the session hears neither EXISTS nor EXPUNGE.
 *
 * Expunges and flag changes always queue one at once: only appends are told apart.
 */
/** How long a noted count is kept: far beyond the moment an IDLE session is told (Dovecot: ~0.5 s). */
const KEEP_MS = 10_000;
/** Counts kept per folder (several APPENDs of one reconcile may reach IDLE as one EXISTS, or as several). */
const KEEP_COUNTS = 64;

const noted = new Map<string, Map<number, number>>();
type AppendListener = (account: string, path: string, uid: number) => void;
const appendListeners = new Set<AppendListener>();

function keyOf(account: string, path: string): string {
  return `${account}\0${path}`;
}

/** The count `account`'s `path` has now, every message of it known to vmbridge. */
export function noteOwnCount(account: string, path: string, count: number, now: number = Date.now()): void {
  const key = keyOf(account, path);
  let counts = noted.get(key);
  if (!counts) noted.set(key, (counts = new Map()));
  counts.delete(count);
  counts.set(count, now);
  for (const [c, at] of counts) {
    if (counts.size <= KEEP_COUNTS && now - at <= KEEP_MS) break;
    counts.delete(c);
  }
}

/** Whether an EXISTS of `count` in `account`'s `path` is the echo of vmbridge's own APPEND. */
export function isOwnEcho(account: string, path: string, count: number, now: number = Date.now()): boolean {
  const at = noted.get(keyOf(account, path))?.get(count);
  return at !== undefined && now - at <= KEEP_MS;
}

/** Tells the listeners that vmbridge appended email `uid` to `account`'s `path` just now. */
export function noteOwnAppend(account: string, path: string, uid: number): void {
  for (const listener of appendListeners) listener(account, path, uid);
}

/** Calls `listener` after each of vmbridge's own APPENDs in this process; returns the unsubscribe. */
export function onOwnAppend(listener: AppendListener): () => void {
  appendListeners.add(listener);
  return () => appendListeners.delete(listener);
}
