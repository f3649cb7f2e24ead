/**
 * Where each role lives on this server: the inbox folder, and Work/Family/Friends under an optional
 * parent, joined with the server's own hierarchy delimiter (as Asterisk does with imapparentfolder).
 */
import type { ImapFlow } from 'imapflow';
import type { Settings } from '../config/schema.js';
import { IMAP_ROLES, type ImapRole } from '../sync/placement.js';
import { ImapError } from '../errors.js';

export type FolderSettings = Settings['imap']['folders'];
export type RolePaths = Readonly<Record<ImapRole, string>>;

interface FolderListing {
  readonly delimiter: string;
  readonly paths: Set<string>;
}

const listings = new WeakMap<ImapFlow, FolderListing>();

async function listing(client: ImapFlow): Promise<FolderListing> {
  let found = listings.get(client);
  if (!found) {
    const list = await client.list();
    const delimiter = list.find((f) => f.delimiter)?.delimiter ?? '/';
    found = { delimiter, paths: new Set(list.map((f) => f.path)) };
    listings.set(client, found);
  }
  return found;
}

/** Settings write paths with "/"; the server may use "." or another delimiter. */
function localPath(path: string, delimiter: string): string {
  return path.split('/').filter((p) => p.length > 0).join(delimiter);
}

export async function rolePaths(client: ImapFlow, folders: FolderSettings): Promise<RolePaths> {
  const { delimiter } = await listing(client);
  const parent = localPath(folders.parent, delimiter);
  const under = (name: string): string => (parent ? `${parent}${delimiter}${localPath(name, delimiter)}` : localPath(name, delimiter));
  const inbox = localPath(folders.inbox, delimiter);
  return {
    inbox: inbox.toUpperCase() === 'INBOX' ? 'INBOX' : inbox,
    work: under(folders.work),
    family: under(folders.family),
    friends: under(folders.friends),
  };
}

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
      throw new ImapError(String(client.options?.auth?.user ?? '?'), `cannot create folder ${JSON.stringify(path)}`, { cause: err });
    }
  }
  found.paths.add(path);
  // Subscribing makes the folder visible in clients that show only subscribed folders.
  await client.mailboxSubscribe(path).catch(() => undefined);
}

export function rolesOf(paths: RolePaths): readonly ImapRole[] {
  return IMAP_ROLES.filter((r) => paths[r] !== undefined);
}
