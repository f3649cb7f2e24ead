/**
 * Message counts of a folder that vmbridge's own APPENDs explain. An IDLE session is told of every
 * new message, vmbridge's own included; a reconcile queued for each of those would hold the
 * mailbox's lock while the next voicemail waits for it, and find nothing to do. The reconcile
 * notes the count its command session saw right after its own APPEND (only when nothing else
 * arrived meanwhile), and the IDLE watcher answers an EXISTS with that count with one reconcile
 * after the echoes stop (a mail client may have marked the new email read before the IDLE session
 * saw it arrive, and then that EXISTS is all it is told), not one per APPEND at once.
 * Expunges and flag changes always queue one at once: only appends are told apart.
 */

/** How long a noted count is kept: far beyond the moment an IDLE session is told (Dovecot: ~0.5 s). */
const KEEP_MS = 10_000;
/** Counts kept per folder (several APPENDs of one reconcile may reach IDLE as one EXISTS, or as several). */
const KEEP_COUNTS = 64;

const noted = new Map<string, Map<number, number>>();

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
