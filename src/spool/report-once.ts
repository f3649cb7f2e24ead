/**
 * Whether a finding about a spool file is new to this process. A damaged envelope is read at every
 * reconcile of its mailbox; its warning is worth one log line per version of the file, not one per
 * read. Bounded: past the limit the oldest entries are forgotten (and may be reported once more).
 */
const reported = new Map<string, string>();
const MAX_ENTRIES = 100_000;

export function isNewFinding(path: string, text: string): boolean {
  if (reported.get(path) === text) return false;
  reported.delete(path);
  if (reported.size >= MAX_ENTRIES) {
    const oldest = reported.keys().next();
    if (!oldest.done) reported.delete(oldest.value);
  }
  reported.set(path, text);
  return true;
}
