/**
 * Where each role lives on this server: the inbox folder, and Work/Family/Friends under an optional
 * parent, joined with the server's own hierarchy delimiter (as Asterisk does with imapparentfolder);
 * and the trash folder that deleted voicemail emails may be moved to.
 *
 * Folder names in the settings are relative to the user's personal namespace (RFC 2342). Where the
 * server puts personal folders under a prefix (Cyrus and Courier by default: "INBOX.", so Work is
 * "INBOX.Work"), the prefix is added; where it has none (Dovecot's default), names stay as written.
 */
import type { ImapFlow, ListResponse } from 'imapflow';
import type { Settings } from '../config/schema.js';
import { IMAP_ROLES, type ImapRole } from '../sync/placement.js';
import { ImapError } from '../errors.js';

export type FolderSettings = Settings['imap']['folders'];
export type RolePaths = Readonly<Record<ImapRole, string>>;

interface FolderListing {
  readonly delimiter: string;
  /** The personal namespace prefix, ending with the delimiter ("INBOX."), or "" where there is none. */
  readonly prefix: string;
  readonly paths: Set<string>;
  /** The folder the server itself flags \Trash in LIST (RFC 6154), if any. */
  readonly flaggedTrash: string | undefined;
}

const listings = new WeakMap<ImapFlow, FolderListing>();

async function listing(client: ImapFlow): Promise<FolderListing> {
  return listings.get(client) ?? remember(client, await client.list());
}

/**
 * Keeps a LIST answer this connection got for another reason (the quick look's LIST-STATUS lists
 * every folder too) as its listing, so that the folder roles need no LIST of their own.
 */
export function rememberListing(client: ImapFlow, list: readonly ListResponse[]): void {
  remember(client, list);
}

function remember(client: ImapFlow, list: readonly ListResponse[]): FolderListing {
  const delimiter = list.find((f) => f.delimiter)?.delimiter ?? client.namespace?.delimiter ?? '/';
  // Only the server's own flag counts, not imapflow's guess from a folder's name: a folder that
  // merely looks like a trash folder in some language may be the user's own. Flags are atoms,
  // compared without regard to case (Cyrus writes "\trash").
  const flaggedTrash = list.find((f) => [...(f.flags ?? [])].some((flag) => flag.toLowerCase() === '\\trash'))?.path;
  const found = { delimiter, prefix: personalPrefix(client, delimiter), paths: new Set(list.map((f) => f.path)), flaggedTrash };
  listings.set(client, found);
  return found;
}

/** The server's hierarchy delimiter (from LIST). */
export async function hierarchyDelimiter(client: ImapFlow): Promise<string> {
  return (await listing(client)).delimiter;
}

/**
 * The personal namespace prefix from the server's NAMESPACE answer (imapflow asks at login; a
 * server without NAMESPACE gets the root from LIST "" ""), made to end with the delimiter.
 */
function personalPrefix(client: ImapFlow, delimiter: string): string {
  const prefix = client.namespace?.prefix ?? '';
  if (prefix === '') return '';
  return prefix.endsWith(delimiter) ? prefix : `${prefix}${delimiter}`;
}

/** Settings write paths with "/"; the server may use "." or another delimiter. */
function localPath(path: string, delimiter: string): string {
  return path.split('/').filter((p) => p.length > 0).join(delimiter);
}

/**
 * The full server path of a folder named in the settings: INBOX as INBOX, everything else under
 * the personal prefix unless it is written with it already ("INBOX/Work" on a server whose prefix
 * is "INBOX."). INBOX is case-insensitive (RFC 3501), so "inbox/Work" counts as written with it.
 */
export function serverPath(name: string, found: Pick<FolderListing, 'delimiter' | 'prefix'>): string {
  const path = localPath(name, found.delimiter);
  if (path.toUpperCase() === 'INBOX') return 'INBOX';
  const { prefix } = found;
  if (prefix === '') return path;
  const inboxFirst = /^INBOX/i.test(prefix) && /^INBOX/i.test(path) ? `${prefix.slice(0, 5)}${path.slice(5)}` : path;
  return inboxFirst.startsWith(prefix) ? inboxFirst : `${prefix}${path}`;
}

export async function rolePaths(client: ImapFlow, folders: FolderSettings): Promise<RolePaths> {
  const found = await listing(client);
  const { delimiter } = found;
  const parent = localPath(folders.parent, delimiter);
  const under = (name: string): string => serverPath(parent ? `${parent}${delimiter}${localPath(name, delimiter)}` : name, found);
  return {
    inbox: serverPath(folders.inbox, found),
    work: under(folders.work),
    family: under(folders.family),
    friends: under(folders.friends),
  };
}

export interface TrashFolder {
  readonly path: string;
  /** configured: imap.folders.trash; special-use: the server's \Trash folder; default: "Trash". */
  readonly source: 'configured' | 'special-use' | 'default';
}

/** The trash folder: imap.folders.trash, else the server's \Trash folder, else "Trash". */
export async function trashFolder(client: ImapFlow, folders: Pick<FolderSettings, 'trash'>): Promise<TrashFolder> {
  const found = await listing(client);
  if (folders.trash !== undefined) return { path: serverPath(folders.trash, found), source: 'configured' };
  if (found.flaggedTrash !== undefined) return { path: found.flaggedTrash, source: 'special-use' };
  return { path: serverPath('Trash', found), source: 'default' };
}

/**
 * The listing is cached per connection, and users create folders (Work, Family, ...) in their mail
 * client at any time. A folder missing from an old listing hides the voicemail the user just filed
 * there, which then looks deleted. An observation made before deleting a voicemail therefore asks
 * the server again (`relist`); every other look uses the listing it has, which costs no round trip
 * (the common mailbox has no Work, Family or Friends folder, and would otherwise be listed at every
 * reconcile).
 */
export async function refreshFolders(client: ImapFlow, opts: { relist: boolean }): Promise<void> {
  if (opts.relist) listings.delete(client);
  await listing(client);
}

/** From the listing as last refreshed (see refreshFolders). */
export async function folderExists(client: ImapFlow, path: string): Promise<boolean> {
  if (path === 'INBOX') return true;
  return (await listing(client)).paths.has(path);
}

/** Creates the folder (and its parents) when missing. A folder made meanwhile by someone else is fine. */
export async function ensureFolder(client: ImapFlow, path: string): Promise<void> {
  if (await folderExists(client, path)) return;
  const found = await listing(client);
  try {
    await client.mailboxCreate(path);
  } catch (err) {
    const e = err as { serverResponseCode?: string };
    if (e.serverResponseCode !== 'ALREADYEXISTS') {
      // With a master login by authzid, the user whose mailbox it is is the authzid.
      const auth = client.options?.auth;
      throw new ImapError(String(auth?.authzid ?? auth?.user ?? '?'), `cannot create folder ${JSON.stringify(path)}`, { cause: err });
    }
  }
  found.paths.add(path);
  // Subscribing makes the folder visible in clients that show only subscribed folders.
  await client.mailboxSubscribe(path).catch(() => undefined);
}

export function rolesOf(paths: RolePaths): readonly ImapRole[] {
  return IMAP_ROLES.filter((r) => paths[r] !== undefined);
}
