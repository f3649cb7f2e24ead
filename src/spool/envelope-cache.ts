/**
 * Parsed envelopes by file identity, shared by the reader and the writer. A reconcile reads the
 * whole mailbox each time, and a move looks for its message among every .txt of two folders; with
 * this, an unchanged message costs one lstat instead of open, read, parse and close. Keyed by
 * device and inode (a renumbering rename keeps both) and checked against size and mtime (a rewrite
 * changes them), so a stale entry is never used.
 */
import type { Stats } from 'node:fs';
import type { Envelope } from './types.js';

const cache = new Map<string, { size: number; mtimeMs: number; envelope: Envelope }>();
const MAX_ENTRIES = 200_000;

const keyOf = (st: Stats): string => `${st.dev}:${st.ino}`;

/** The envelope of the file `st` describes, if it was parsed before and has not changed since. */
export function cachedEnvelope(st: Stats): Envelope | undefined {
  if (!st.isFile()) return undefined;
  const hit = cache.get(keyOf(st));
  return hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs ? hit.envelope : undefined;
}

/** Notes the envelope parsed from the file `st` describes (stats taken before or while reading it). */
export function rememberEnvelope(st: Stats, envelope: Envelope): void {
  if (!st.isFile()) return;
  if (cache.size >= MAX_ENTRIES) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(keyOf(st), { size: st.size, mtimeMs: st.mtimeMs, envelope });
}
