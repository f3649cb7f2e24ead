/**
 * asterisk.conf's `runuser`/`rungroup` as the ids vmbridge gives the spool folders it creates.
 * Names are looked up the way Asterisk does (getpwnam/getgrnam, so LDAP or other NSS sources count):
 * through getent, or /etc/passwd and /etc/group where getent is missing. As in Asterisk, `runuser`
 * without `rungroup` means the user's primary group.
 *
 * Only a root vmbridge gives anything away (src/spool/ownership.ts); as any other user it cannot,
 * and what it creates is its own user's and group's, so it should then run as Asterisk's user or
 * with Asterisk's group as its primary group.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { runsAsRoot, type SpoolOwnership } from '../spool/ownership.js';
import { readAsteriskConf } from './asterisk-conf.js';
import type { Settings } from './schema.js';

/** A passwd or group entry: its name, id and (for a user) primary group. */
interface Entry {
  readonly id: number;
  readonly gid?: number;
}

/** Finds a user or group by name; undefined when there is none. Replaceable in tests. */
export type NameLookup = (db: 'passwd' | 'group', name: string) => Promise<Entry | undefined>;

/** POSIX portable names plus the `$` Samba machine accounts use; anything else is no name getent should see. */
const USABLE_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/;

export interface SpoolOwnershipOptions {
  /** Whether vmbridge runs as root; default: asks the process. */
  readonly root?: boolean;
  readonly lookup?: NameLookup;
}

/**
 * What vmbridge gives the folders it creates: undefined when it is not root (it cannot give them
 * away), else asterisk.conf's runuser/rungroup where `spool.asteriskConf` sets them; parts left
 * unset are taken from each mailbox folder when the folder is created.
 */
export async function spoolOwnership(settings: Settings, opts: SpoolOwnershipOptions = {}): Promise<SpoolOwnership | undefined> {
  if (!(opts.root ?? runsAsRoot())) return undefined;
  const file = settings.spool.asteriskConf;
  if (file === undefined) return {};
  const conf = await readAsteriskConf(file);
  return resolveRunUser(file, conf.runuser, conf.rungroup, opts.lookup ?? lookupName);
}

/** runuser/rungroup names as ids; an unknown or unusable name is a ConfigError naming file and key. */
export async function resolveRunUser(file: string, runuser: string | undefined, rungroup: string | undefined, lookup: NameLookup = lookupName): Promise<SpoolOwnership> {
  let uid: number | undefined;
  let gid: number | undefined;
  if (runuser !== undefined) {
    const user = await find(lookup, 'passwd', file, 'runuser', runuser);
    uid = user.id;
    gid = user.gid;
  }
  if (rungroup !== undefined) gid = (await find(lookup, 'group', file, 'rungroup', rungroup)).id;
  return { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
}

async function find(lookup: NameLookup, db: 'passwd' | 'group', file: string, key: string, name: string): Promise<Entry> {
  const what = db === 'passwd' ? 'user' : 'group';
  if (!USABLE_NAME.test(name)) throw new ConfigError(`${file}: [options] ${key} = ${JSON.stringify(name)} is not a usable ${what} name`, { file, key });
  let entry: Entry | undefined;
  try {
    entry = await lookup(db, name);
  } catch (err) {
    throw new ConfigError(`${file}: [options] ${key} = ${name}: the ${what} could not be looked up (${err instanceof Error ? err.message : String(err)})`, { file, key }, { cause: err });
  }
  if (entry === undefined) throw new ConfigError(`${file}: [options] ${key} = ${name}: there is no such ${what} on this system, so the spool's owner is unknown`, { file, key });
  return entry;
}

/** getent, or the local files where getent is not installed. */
export const lookupName: NameLookup = async (db, name) => {
  const out = await getent(db, name);
  return out === 'no-getent' ? fromLocalFile(db, name) : out === undefined ? undefined : parseEntry(db, out, name);
};

function getent(db: 'passwd' | 'group', name: string): Promise<string | undefined | 'no-getent'> {
  return new Promise((resolve, reject) => {
    // `--` so a name can never be read as an option (the pattern above already excludes a leading '-').
    execFile('getent', [db, '--', name], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => {
      if (!err) return resolve(stdout);
      // A spawn failure has a string code (ENOENT); a finished getent, its exit status as a number.
      const code: unknown = (err as { code?: unknown }).code;
      if (code === 'ENOENT') return resolve('no-getent');
      if (code === 2) return resolve(undefined); // getent: key not found
      reject(err);
    });
  });
}

async function fromLocalFile(db: 'passwd' | 'group', name: string): Promise<Entry | undefined> {
  const text = await readFile(db === 'passwd' ? '/etc/passwd' : '/etc/group', 'utf8');
  return parseEntry(db, text, name);
}

/**
 * The entry named `name` in passwd or group lines. getent also answers to a number, and
 * Asterisk's getpwnam does not, so the name must match exactly.
 */
export function parseEntry(db: 'passwd' | 'group', text: string, name: string): Entry | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < (db === 'passwd' ? 7 : 4)) continue;
    const id = Number(f[2]);
    if (!Number.isInteger(id) || id < 0 || f[2] === '') continue;
    if (db === 'group') return { id };
    const gid = Number(f[3]);
    if (!Number.isInteger(gid) || gid < 0 || f[3] === '') continue;
    return { id, gid };
  }
  return undefined;
}
