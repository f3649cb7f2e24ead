/**
 * Observes which of a mailbox's voicemail emails are in which mapped folder, with their flags.
 *
 * Only messages that carry vmbridge's identity for this mailbox are returned: the user's own mail in
 * the same folders is never looked at beyond its Message-ID, and never touched. Messages flagged
 * \Deleted count as gone (a client that deletes without expunging, or a server without UIDPLUS).
 *
 * Identities are cached per folder and UIDVALIDITY, so a second look at a folder fetches only UIDs
 * and flags, plus headers for UIDs it has not seen before.
 */
import type { ImapFlow } from 'imapflow';
import type { MailboxRef } from '../spool/types.js';
import type { ImapRole } from '../sync/placement.js';
import type { ImapSide } from '../sync/plan.js';
import { parseIdentityMessageId } from './identity-header.js';
import { folderExists, refreshFolders, type RolePaths } from './folders.js';

export interface ImapObservation {
  /** identity -> copies in mapped folders */
  readonly copies: Map<string, ImapSide[]>;
  readonly uidValidity: Partial<Record<ImapRole, string>>;
}

interface FolderCache {
  uidValidity: string;
  /** uid -> "<context>\0<mailbox>\0<id>", or null for mail that is not ours */
  owners: Map<number, string | null>;
}

const caches = new WeakMap<ImapFlow, Map<string, FolderCache>>();

function cacheFor(client: ImapFlow, path: string, uidValidity: string): FolderCache {
  let perClient = caches.get(client);
  if (!perClient) caches.set(client, (perClient = new Map()));
  let cache = perClient.get(path);
  if (!cache || cache.uidValidity !== uidValidity) perClient.set(path, (cache = { uidValidity, owners: new Map() }));
  return cache;
}

/** Remembers the identity of a UID vmbridge itself just wrote, so it need not be fetched again. */
export function rememberOwner(client: ImapFlow, path: string, uidValidity: string, uid: number, ref: MailboxRef, id: string): void {
  cacheFor(client, path, uidValidity).owners.set(uid, ownerKey(ref, id));
}

function ownerKey(ref: MailboxRef, id: string): string {
  return `${ref.context}\0${ref.mailbox}\0${id}`;
}

/** The Message-ID value in a raw header block (unfolded). */
export function messageIdFromHeaders(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  const text = raw.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const m = /^message-id:[ \t]*(.*)$/im.exec(text);
  return m?.[1]?.trim();
}

export async function observeImap(
  client: ImapFlow,
  ref: MailboxRef,
  paths: RolePaths,
  domain: string,
): Promise<ImapObservation> {
  const copies = new Map<string, ImapSide[]>();
  const uidValidity: Partial<Record<ImapRole, string>> = {};
  const mine = `${ref.context}\0${ref.mailbox}\0`;
  const seenPaths = new Set<string>();
  await refreshFolders(client, Object.values(paths));

  for (const role of ['inbox', 'work', 'family', 'friends'] as const) {
    const path = paths[role];
    if (seenPaths.has(path)) continue; // a misconfiguration mapping two roles to one folder
    seenPaths.add(path);
    if (!(await folderExists(client, path))) continue;

    const lock = await client.getMailboxLock(path);
    try {
      // The folder may have stayed selected since the last look: a NOOP brings the EXISTS and
      // EXPUNGE news of other sessions first, so what follows is not a stale view.
      await client.noop();
      const box = client.mailbox;
      if (!box) continue;
      const validity = box.uidValidity.toString();
      uidValidity[role] = validity;
      if (box.exists === 0) continue;
      const cache = cacheFor(client, path, validity);

      const needHeaders = cache.owners.size === 0;
      const rows = await client.fetchAll('1:*', { uid: true, flags: true, ...(needHeaders ? { headers: ['message-id'] } : {}) }, { uid: true });
      const unknown: number[] = [];
      for (const row of rows) {
        if (needHeaders) cache.owners.set(row.uid, ownerOf(messageIdFromHeaders(row.headers), domain));
        else if (!cache.owners.has(row.uid)) unknown.push(row.uid);
      }
      if (unknown.length > 0) {
        for (const row of await client.fetchAll(unknown.join(','), { uid: true, headers: ['message-id'] }, { uid: true })) {
          cache.owners.set(row.uid, ownerOf(messageIdFromHeaders(row.headers), domain));
        }
      }
      const live = new Set<number>();
      for (const row of rows) {
        live.add(row.uid);
        const owner = cache.owners.get(row.uid);
        if (!owner || !owner.startsWith(mine)) continue;
        const flags = row.flags ?? new Set<string>();
        if (flags.has('\\Deleted')) continue;
        const id = owner.slice(mine.length);
        const list = copies.get(id) ?? [];
        list.push({ role, uid: row.uid, seen: flags.has('\\Seen'), flagged: flags.has('\\Flagged') });
        copies.set(id, list);
      }
      for (const uid of cache.owners.keys()) if (!live.has(uid)) cache.owners.delete(uid);
    } finally {
      lock.release();
    }
  }
  return { copies, uidValidity };
}

function ownerOf(messageId: string | undefined, domain: string): string | null {
  if (!messageId) return null;
  const parsed = parseIdentityMessageId(messageId, domain);
  return parsed ? ownerKey(parsed.ref, parsed.id) : null;
}
