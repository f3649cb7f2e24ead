/**
 * Observes which of a mailbox's voicemail emails are in which mapped folder, with their flags.
 *
 * Only messages that carry vmbridge's identity for this mailbox are returned: the user's own mail in
 * the same folders is never looked at beyond its Message-ID, and never touched. Messages flagged
 * \Deleted count as gone (a client that deletes without expunging, or a server without UIDPLUS).
 *
 * Each connection keeps a view of every folder it looked at (UID -> identity and flags), so a look
 * costs what changed, not what the folder holds:
 *  - with CONDSTORE (RFC 7162), a look fetches only the messages whose MODSEQ rose since the last
 *    one (new ones and flag changes, with the Message-ID header). Expunges do not show there, so the
 *    view is trusted only when its size equals the server's message count after that fetch (every
 *    new message is in the fetch, so a difference means something was expunged); otherwise the
 *    folder is read in full;
 *  - without CONDSTORE, every look fetches UIDs and flags, and headers only for UIDs not seen before.
 * A UIDVALIDITY change throws the view away.
 */
import type { ImapFlow } from 'imapflow';
import type { MailboxRef } from '../spool/types.js';
import type { ImapRole } from '../sync/placement.js';
import type { ImapSide } from '../sync/plan.js';
import { asteriskStorageIdentity, IDENTITY_HEADER_FIELDS } from './asterisk-storage-identity.js';
import { parseIdentityMessageId } from './identity-header.js';
import { folderExists, refreshFolders, type RolePaths } from './folders.js';

export interface ImapObservation {
  /** identity -> copies in mapped folders */
  readonly copies: Map<string, ImapSide[]>;
  /**
   * msg_id -> copies of the emails Asterisk's own IMAP storage wrote for this mailbox's context and
   * Asterisk extension (X-Asterisk-VM-Context, X-Asterisk-VM-Extension). Not in `copies`: whether
   * they are this mailbox's is for the caller to say when several mailboxes share the extension
   * (imapvmshareid=; src/sync/shared-extension.ts).
   */
  readonly asteriskCopies: Map<string, ImapSide[]>;
  readonly uidValidity: Partial<Record<ImapRole, string>>;
}

interface ViewRow {
  /**
   * "v\0<context>\0<mailbox>\0<id>" for vmbridge's identity Message-ID, "a\0<context>\0<extension>\0<id>"
   * for the X-Asterisk-VM-* headers of Asterisk's IMAP storage, or null for mail that is not ours.
   * The two are kept apart: a mailbox's share id may be another mailbox's number.
   */
  owner: string | null;
  /** Carries X-VMBridge-Transcript: pending (its transcript follows in a replacement). */
  pending: boolean;
  seen: boolean;
  flagged: boolean;
  deleted: boolean;
}

interface FolderView {
  uidValidity: string;
  /**
   * The message count the session should report if nobody else changed the folder since the last
   * look: set by each look, one more for each APPEND of vmbridge's, one less for each of its
   * expunges and moves away.
   */
  expectedExists?: number;
  /** Every message of the folder as of the last look, plus what this connection appended since. */
  rows: Map<number, ViewRow>;
  /** Every UID at or below this one was looked at: it is in `rows`, or it is gone. */
  lookedThrough: number;
  /** Highest MODSEQ of the last look (CONDSTORE); undefined until a full look with MODSEQ. */
  modseq?: bigint;
}

const views = new WeakMap<ImapFlow, Map<string, FolderView>>();

function viewFor(client: ImapFlow, path: string, uidValidity: string): FolderView {
  let perClient = views.get(client);
  if (!perClient) views.set(client, (perClient = new Map()));
  let view = perClient.get(path);
  if (!view || view.uidValidity !== uidValidity) perClient.set(path, (view = { uidValidity, rows: new Map(), lookedThrough: 0 }));
  return view;
}

function ownerKey(ref: MailboxRef, id: string): string {
  return `v\0${ref.server ?? ''}\0${ref.context}\0${ref.mailbox}\0${id}`;
}

function asteriskKey(context: string, extension: string, id: string): string {
  return `a\0${context}\0${extension}\0${id}`;
}

/** Remembers a UID vmbridge itself just wrote (APPEND, MOVE), so it need not be fetched again. */
export function rememberOwner(
  client: ImapFlow,
  path: string,
  uidValidity: string,
  uid: number,
  ref: MailboxRef,
  id: string,
  flags: { seen: boolean; flagged: boolean; pending?: boolean } = { seen: false, flagged: false },
): void {
  const view = viewFor(client, path, uidValidity);
  if (!view.rows.has(uid) && view.expectedExists !== undefined) view.expectedExists++;
  view.rows.set(uid, { owner: ownerKey(ref, id), pending: flags.pending ?? false, seen: flags.seen, flagged: flags.flagged, deleted: false });
  // Contiguous with what was looked at: nothing anyone else wrote can hide below it.
  if (uid === view.lookedThrough + 1) view.lookedThrough = uid;
}

/** Drops a UID vmbridge itself expunged or moved away, so the view keeps matching the server's count. */
export function forgetUid(client: ImapFlow, path: string, uidValidity: string, uid: number): void {
  const view = views.get(client)?.get(path);
  if (view && view.uidValidity === uidValidity && view.rows.delete(uid) && view.expectedExists !== undefined) view.expectedExists--;
}

/**
 * The selected folder's message count when every message in it is known to this view (the count
 * the server reports is what the last look and vmbridge's own changes since explain); else undefined.
 */
export function explainedCount(client: ImapFlow, path: string): number | undefined {
  const box = client.mailbox;
  if (!box || box.path !== path) return undefined;
  const view = views.get(client)?.get(path);
  if (!view || view.uidValidity !== box.uidValidity.toString() || view.expectedExists !== box.exists) return undefined;
  return box.exists;
}

/** The Message-ID value in a raw header block (unfolded). */
export function messageIdFromHeaders(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  const text = raw.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const m = /^message-id:[ \t]*(.*)$/im.exec(text);
  return m?.[1]?.trim();
}

interface FetchedRow {
  uid: number;
  flags?: Set<string>;
  headers?: Buffer;
  modseq?: bigint;
}

/** True when the header block (or a whole message: only its header is read) says X-VMBridge-Transcript: pending. */
export function pendingFromHeaders(raw: Buffer | undefined): boolean {
  if (!raw) return false;
  const end = raw.indexOf('\r\n\r\n');
  const head = (end >= 0 ? raw.subarray(0, end) : raw).toString('latin1');
  return /^x-vmbridge-transcript:[ \t]*pending[ \t]*$/im.test(head);
}

/** Whether this connection's view has `uid` of `path` marked pending (a message keeps its headers when moved). */
export function isPendingUid(client: ImapFlow, path: string, uid: number): boolean {
  return views.get(client)?.get(path)?.rows.get(uid)?.pending ?? false;
}

function rowOf(fetched: FetchedRow, owner: string | null, pending: boolean): ViewRow {
  const flags = fetched.flags ?? new Set<string>();
  return { owner, pending, seen: flags.has('\\Seen'), flagged: flags.has('\\Flagged'), deleted: flags.has('\\Deleted') };
}

function maxModseq(rows: readonly FetchedRow[], floor: bigint | undefined): bigint | undefined {
  let best = floor;
  for (const r of rows) if (r.modseq !== undefined && (best === undefined || r.modseq > best)) best = r.modseq;
  return best;
}

function usesModseq(client: ImapFlow): boolean {
  return client.enabled.has('CONDSTORE') && client.mailbox !== false && !client.mailbox.noModseq;
}

/** Reads the whole folder into the view: UIDs and flags, headers only for UIDs not seen before. */
async function fullLook(client: ImapFlow, view: FolderView, domain: string): Promise<void> {
  const modseq = usesModseq(client);
  const needHeaders = view.rows.size === 0;
  // imapflow asks for MODSEQ by itself whenever CONDSTORE is enabled.
  const rows: FetchedRow[] = await client.fetchAll('1:*', { uid: true, flags: true, ...(needHeaders ? { headers: IDENTITY_HEADER_FIELDS } : {}) }, { uid: true });
  // A message's headers never change, so what a UID's headers said is kept with it.
  const known = new Map<number, { owner: string | null; pending: boolean }>();
  const unknown: number[] = [];
  for (const row of rows) {
    if (needHeaders) known.set(row.uid, { owner: ownerOfHeaders(row.headers, domain), pending: pendingFromHeaders(row.headers) });
    else {
      const had = view.rows.get(row.uid);
      if (had) known.set(row.uid, { owner: had.owner, pending: had.pending });
      else unknown.push(row.uid);
    }
  }
  if (unknown.length > 0) {
    for (const row of await client.fetchAll(unknown.join(','), { uid: true, headers: IDENTITY_HEADER_FIELDS }, { uid: true })) {
      known.set(row.uid, { owner: ownerOfHeaders(row.headers, domain), pending: pendingFromHeaders(row.headers) });
    }
  }
  view.rows.clear();
  let highest = 0;
  for (const row of rows) {
    const k = known.get(row.uid);
    view.rows.set(row.uid, rowOf(row, k?.owner ?? null, k?.pending ?? false));
    if (row.uid > highest) highest = row.uid;
  }
  view.lookedThrough = Math.max(highest, view.lookedThrough);
  view.modseq = modseq ? maxModseq(rows, undefined) : undefined;
}

/**
 * CONDSTORE: fetches what changed since the last look into the view. False when the view cannot be
 * trusted afterwards (something was expunged, or the server gave no MODSEQ): read it in full.
 */
async function changedLook(client: ImapFlow, view: FolderView, domain: string, exists: () => number): Promise<boolean> {
  if (view.modseq === undefined || !usesModseq(client)) return false;
  const rows: FetchedRow[] = await client.fetchAll('1:*', { uid: true, flags: true, headers: IDENTITY_HEADER_FIELDS }, { uid: true, changedSince: view.modseq });
  for (const row of rows) {
    const had = view.rows.get(row.uid);
    view.rows.set(row.uid, rowOf(row, had ? had.owner : ownerOfHeaders(row.headers, domain), had ? had.pending : pendingFromHeaders(row.headers)));
    if (row.uid > view.lookedThrough) view.lookedThrough = row.uid;
  }
  if (rows.some((r) => r.modseq === undefined)) return false;
  view.modseq = maxModseq(rows, view.modseq);
  return view.rows.size === exists();
}

/**
 * Brings the view of the selected folder up to date and returns it. The folder must be selected
 * (held by a mailbox lock) by the caller.
 */
async function lookAtSelected(client: ImapFlow, path: string, domain: string): Promise<FolderView | undefined> {
  // The folder may have stayed selected since the last look: a NOOP brings the EXISTS and EXPUNGE
  // news of other sessions first, so what follows is not a stale view.
  await client.noop();
  const box = client.mailbox;
  if (!box) return undefined;
  const view = viewFor(client, path, box.uidValidity.toString());
  const exists = (): number => (client.mailbox ? client.mailbox.exists : -1);
  if (box.exists === 0) {
    view.rows.clear();
    view.expectedExists = 0;
    // Nothing is left of any UID below UIDNEXT.
    if (box.uidNext > 1) view.lookedThrough = Math.max(view.lookedThrough, box.uidNext - 1);
    view.modseq = usesModseq(client) && box.highestModseq !== undefined ? box.highestModseq : undefined;
    return view;
  }
  if (!(await changedLook(client, view, domain, exists))) await fullLook(client, view, domain);
  view.expectedExists = exists();
  return view;
}

export async function observeImap(
  client: ImapFlow,
  ref: MailboxRef,
  paths: RolePaths,
  domain: string,
  opts: {
    relist?: boolean;
    /** What Asterisk writes in X-Asterisk-VM-Extension for this mailbox: its imapvmshareid, else its number. */
    asteriskExtension?: string;
  } = {},
): Promise<ImapObservation> {
  const copies = new Map<string, ImapSide[]>();
  const asteriskCopies = new Map<string, ImapSide[]>();
  const uidValidity: Partial<Record<ImapRole, string>> = {};
  const mine = ownerKey(ref, '');
  const theirs = asteriskKey(ref.context, opts.asteriskExtension ?? ref.mailbox, '');
  const seenPaths = new Set<string>();
  // A look that may lead to deleting a voicemail lists the folders again (see refreshFolders).
  await refreshFolders(client, { relist: opts.relist ?? false });

  for (const role of ['inbox', 'work', 'family', 'friends'] as const) {
    const path = paths[role];
    if (seenPaths.has(path)) continue; // a misconfiguration mapping two roles to one folder
    seenPaths.add(path);
    if (!(await folderExists(client, path))) continue;

    let lock: Awaited<ReturnType<ImapFlow['getMailboxLock']>>;
    try {
      lock = await client.getMailboxLock(path);
    } catch (err) {
      // Listed a moment ago, gone now (renamed or deleted by the user): missing, not a failure.
      // The plan then holds what that folder's emails stood for (imap-replaced).
      await refreshFolders(client, { relist: true });
      if (!(await folderExists(client, path))) continue;
      throw err;
    }
    try {
      const view = await lookAtSelected(client, path, domain);
      if (!view) continue;
      uidValidity[role] = view.uidValidity;
      for (const [uid, row] of view.rows) {
        if (!row.owner || row.deleted) continue;
        const [into, prefix] = row.owner.startsWith(mine) ? [copies, mine] : row.owner.startsWith(theirs) ? [asteriskCopies, theirs] : [undefined, ''];
        if (!into) continue;
        const id = row.owner.slice(prefix.length);
        const list = into.get(id) ?? [];
        list.push({ role, uid, seen: row.seen, flagged: row.flagged, ...(row.pending ? { pending: true } : {}) });
        into.set(id, list);
      }
    } finally {
      lock.release();
    }
  }
  return { copies, asteriskCopies, uidValidity };
}

/**
 * UIDs of the selected folder that carry exactly this identity (vmbridge's Message-ID; an email
 * Asterisk's IMAP storage wrote is never taken for it here, as it may be another mailbox's when
 * mailboxes share an extension) and are not flagged \Deleted: the
 * look for an identity that comes right before an APPEND. Everything at or below the view's
 * `lookedThrough` is known from the observation this reconcile made. Whether anything arrived
 * since is told by the message count the server reports to this session (it announces new
 * messages in the response to any command, vmbridge's own APPENDs included): when it is what
 * vmbridge's own changes explain, nothing is fetched. Otherwise a NOOP brings the session's view
 * up to date (a server evaluates a UID range against the messages it has announced) and the UIDs
 * above `lookedThrough` are fetched with their Message-ID and compared exactly.
 */
export async function findIdentityInSelected(client: ImapFlow, path: string, ref: MailboxRef, id: string, domain: string): Promise<number[]> {
  return (await findCopiesInSelected(client, path, ref, id, domain)).map((c) => c.uid);
}

/** As findIdentityInSelected, with whether each copy is marked pending (its transcript follows). */
export async function findCopiesInSelected(client: ImapFlow, path: string, ref: MailboxRef, id: string, domain: string): Promise<{ uid: number; pending: boolean; seen: boolean; flagged: boolean }[]> {
  let box = client.mailbox;
  if (!box) return [];
  const view = viewFor(client, path, box.uidValidity.toString());
  if (view.expectedExists === undefined || box.exists !== view.expectedExists) {
    await client.noop();
    box = client.mailbox;
    if (!box) return [];
    if (box.exists > 0) {
      const range = `${view.lookedThrough + 1}:*`;
      for (const row of await client.fetchAll(range, { uid: true, flags: true, headers: IDENTITY_HEADER_FIELDS }, { uid: true })) {
        const had = view.rows.get(row.uid);
        view.rows.set(row.uid, rowOf(row, had ? had.owner : ownerOfHeaders(row.headers, domain), had ? had.pending : pendingFromHeaders(row.headers)));
        if (row.uid > view.lookedThrough) view.lookedThrough = row.uid;
      }
    }
    // Counted again only by the next look: until then every lookup asks the server.
    view.expectedExists = undefined;
  }
  const wanted = ownerKey(ref, id);
  const found: { uid: number; pending: boolean; seen: boolean; flagged: boolean }[] = [];
  for (const [uid, row] of view.rows) if (row.owner === wanted && !row.deleted) found.push({ uid, pending: row.pending, seen: row.seen, flagged: row.flagged });
  return found.sort((a, b) => a.uid - b.uid);
}

function ownerOf(messageId: string | undefined, domain: string): string | null {
  if (!messageId) return null;
  const parsed = parseIdentityMessageId(messageId, domain);
  return parsed ? ownerKey(parsed.ref, parsed.id) : null;
}

/** vmbridge's identity Message-ID, else the X-Asterisk-VM-* identity of an email Asterisk's IMAP storage wrote. */
function ownerOfHeaders(raw: Buffer | undefined, domain: string): string | null {
  const ours = ownerOf(messageIdFromHeaders(raw), domain);
  if (ours) return ours;
  const theirs = asteriskStorageIdentity(raw);
  return theirs ? asteriskKey(theirs.ref.context, theirs.ref.mailbox, theirs.id) : null;
}
