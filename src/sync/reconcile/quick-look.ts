/**
 * Phase 0 of a background reconcile (the start-up pass, the sweep), the quick look: has anything
 * changed since the last background reconcile found this mailbox quiet? The store's messages, the
 * records and the account are compared by digest, and each mapped IMAP folder by its STATUS
 * (UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ: a new, removed or moved email changes the first
 * three, a changed flag the last). All equal: nothing to do, and no folder is selected or fetched.
 *
 * The folders' STATUS comes in one LIST-STATUS command where the server has it (Dovecot does),
 * else one STATUS each. Only where the server has CONDSTORE: without HIGHESTMODSEQ a changed flag (an email read) would
 * not show, so every reconcile looks in full. The STATUS is taken before the full look, so a
 * change made while it runs makes the next quick look differ.
 */
import { createHash } from 'node:crypto';
import type { ImapFlow, ListResponse } from 'imapflow';
import { accountKey } from '../../imap/account.js';
import { rememberListing, rolePaths, type RolePaths } from '../../imap/folders.js';
import type { QuietMark } from '../quiet-marks.js';
import type { FolderStatuses } from '../../imap/doveadm.js';
import type { SyncRecord } from '../plan.js';
import type { MailboxRun, StoreView } from './types.js';

export interface QuickLook {
  /** The mark matched: nothing changed since the mailbox was last found quiet. */
  readonly unchanged: boolean;
  readonly mark: QuietMark | undefined;
  /** What a new mark would hold if the full look finds nothing to do (undefined: cannot be marked). */
  readonly candidate: Omit<QuietMark, 'imapTotal'> | undefined;
}

export function storeDigest(store: StoreView): string {
  const lines = [...store.snapshot.messages]
    .map((m) => `${m.folder}\0${m.id}\0${m.msgnum}\0${m.audio.map((a) => a.ext).sort().join(',')}`)
    .sort();
  lines.push(`problems:${store.snapshot.problems.length}`);
  return createHash('sha256').update(lines.join('\n')).digest('base64url');
}

export function recordsDigest(records: ReadonlyMap<string, SyncRecord>): string {
  const lines = [...records.entries()].map(([id, r]) => `${id}\0${JSON.stringify(r)}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('base64url');
}

/**
 * STATUS of each folder, as one comparable string each; undefined when one lacks HIGHESTMODSEQ or
 * fails. `paths` are the folders, or how to find them (the mapped folders as the server lists
 * them now). A LIST-STATUS answer lists every folder, so it is kept as the connection's listing:
 * finding the folders then needs no LIST of its own, nor does the full look that may follow.
 */
async function folderStatus(client: ImapFlow, paths: readonly string[] | (() => Promise<readonly string[]>)): Promise<Record<string, string> | undefined> {
  const wanted = async (): Promise<readonly string[]> => (typeof paths === 'function' ? paths() : paths);
  // A server may answer STATUS for the folder this session has selected from the session's own
  // view (Dovecot does), which other sessions' changes reach only at the next sync: NOOP first.
  if (client.mailbox) await client.noop();
  if (client.capabilities.has('LIST-STATUS')) {
    // One round trip for every folder (RFC 5819) instead of one STATUS each.
    const list = await client.list({ statusQuery: STATUS_QUERY });
    rememberListing(client, list);
    return statusesOf(list, await wanted());
  }
  const out: Record<string, string> = {};
  for (const path of await wanted()) {
    let st;
    try {
      st = await client.status(path, STATUS_QUERY);
    } catch (err) {
      // A mapped folder not made yet (vmbridge makes Work, Family, Friends when first needed) is
      // part of the state too: made later, it no longer compares equal.
      if (isNonexistent(err)) {
        out[path] = 'absent';
        continue;
      }
      return undefined; // refused for another reason: the full look will say what it is
    }
    const text = st ? statusText(st) : undefined;
    if (text === undefined) return undefined;
    out[path] = text;
  }
  return out;
}

const STATUS_QUERY = { messages: true, uidNext: true, uidValidity: true, highestModseq: true } as const;

function statusText(st: { uidValidity?: bigint | undefined; uidNext?: number | undefined; messages?: number | undefined; highestModseq?: bigint | undefined }): string | undefined {
  if (st.highestModseq === undefined || st.uidValidity === undefined) return undefined;
  return `${st.uidValidity}/${st.uidNext ?? ''}/${st.messages ?? ''}/${st.highestModseq}`;
}

/** The folders' statuses out of a LIST-STATUS answer; a folder it does not list is absent. */
function statusesOf(list: readonly ListResponse[], paths: readonly string[]): Record<string, string> | undefined {
  const listed = new Map(list.map((e) => [e.path, e]));
  const out: Record<string, string> = {};
  for (const path of paths) {
    const entry = listed.get(path);
    if (!entry) {
      out[path] = 'absent';
      continue;
    }
    const text = entry.status ? statusText(entry.status) : undefined;
    if (text === undefined) return undefined;
    out[path] = text;
  }
  return out;
}

function isNonexistent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { serverResponseCode?: unknown; responseText?: unknown; message?: unknown };
  return e.serverResponseCode === 'NONEXISTENT' || /NONEXISTENT|doesn't exist|does not exist/i.test(`${String(e.responseText ?? '')} ${String(e.message ?? '')}`);
}

const samePaths = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
};

export async function quickLook(run: MailboxRun, store: StoreView, client: ImapFlow): Promise<QuickLook> {
  const { deps, box } = run;
  const marks = deps.quietMarks;
  if (!marks) return { unchanged: false, mark: undefined, candidate: undefined };
  const [mark, loaded] = await Promise.all([marks.get(box.ref), deps.state.load(box.ref)]);
  // The mark's folders when there is one (no LIST needed); else the mapped folders as found now.
  const folders = await folderStatus(client, mark ? Object.keys(mark.folders) : async () => uniquePaths(await rolePaths(client, deps.settings.imap.folders)));
  if (!folders) return { unchanged: false, mark, candidate: undefined };
  const candidate = { store: storeDigest(store), records: recordsDigest(loaded.records), account: accountKey(box.account), folders };
  const unchanged = mark !== undefined && loaded.dropped.length === 0
    && mark.store === candidate.store && mark.records === candidate.records && mark.account === candidate.account && samePaths(mark.folders, folders);
  return { unchanged, mark, candidate };
}

/**
 * The quick look from folder statuses known without logging in (Dovecot's doveadm API, through
 * ./folder-status-snapshot.ts). Only against a mark: without one, which folders are mapped is not
 * known without IMAP. Undefined: the IMAP quick look decides.
 */
export async function quickLookKnown(run: MailboxRun, store: StoreView, known: FolderStatuses): Promise<QuickLook | undefined> {
  const { deps, box } = run;
  const marks = deps.quietMarks;
  if (!marks) return undefined;
  const [mark, loaded] = await Promise.all([marks.get(box.ref), deps.state.load(box.ref)]);
  if (!mark) return undefined;
  const folders: Record<string, string> = {};
  // A folder the snapshot does not list does not exist (doveadm lists every folder of the user).
  for (const path of Object.keys(mark.folders)) folders[path] = known.get(path) ?? 'absent';
  const candidate = { store: storeDigest(store), records: recordsDigest(loaded.records), account: accountKey(box.account), folders };
  const unchanged = loaded.dropped.length === 0
    && mark.store === candidate.store && mark.records === candidate.records && mark.account === candidate.account && samePaths(mark.folders, folders);
  return { unchanged, mark, candidate };
}

export function uniquePaths(paths: RolePaths): string[] {
  return [...new Set(Object.values(paths))].sort();
}
