/**
 * The IMAP_STORAGE options of voicemail.conf's [general] as vmbridge settings, so that a site that
 * used Asterisk's IMAP storage keeps its server, port, TLS flags, folders and master login where
 * they are (docs/migrate-from-imap-storage.md). A setting given in vmbridge's own file or
 * environment always wins; these only fill what is not set.
 *
 * Asterisk builds a c-client mailbox name from them, `{server:port/imap[/authuser=A][/flags]/user=U}folder`
 * (imap_mailbox_name), with imapport 143 when it is not set, whatever the flags say; c-client then
 * tries STARTTLS where the server offers it unless the flags say notls.
 */

import { getAt, setAt } from './raw-settings.js';
import { readVoicemailConf } from './voicemail-conf.js';

/** One setting filled from voicemail.conf, with the option it came from. */
export interface ImapFill {
  readonly path: readonly string[];
  readonly value: string | number | boolean;
  /** The voicemail.conf option, e.g. `imapserver=mail.example.com`. */
  readonly from: string;
}

export interface ImapFromConf {
  readonly fills: readonly ImapFill[];
  /** Things in the options that vmbridge cannot honour, each naming the option. */
  readonly problems: readonly string[];
}

/** Asterisk's default imapport (app_voicemail's imapport[] = "143"). */
const ASTERISK_IMAP_PORT = 143;

/**
 * c-client flags that change nothing for vmbridge: the protocol is always IMAP4rev1, and these
 * concern c-client's own transport choices (rsh pre-authentication, its debug telemetry).
 */
const NO_EFFECT = new Set(['imap', 'imap2', 'imap2bis', 'imap4', 'imap4rev1', 'norsh', 'debug', 'validate-cert']);

/** The settings the IMAP_STORAGE options of voicemail.conf [general] give. Pure. */
export function imapFromGeneral(general: Readonly<Record<string, string>>): ImapFromConf {
  const fills: ImapFill[] = [];
  const problems: string[] = [];
  const opt = (key: string): string | undefined => {
    const v = general[key]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const fill = (path: string, value: string | number | boolean, key: string, raw: string): void => {
    fills.push({ path: path.split('.'), value, from: `${key}=${raw}` });
  };

  const server = opt('imapserver');
  if (server !== undefined) fill('imap.host', server, 'imapserver', server);
  const port = opt('imapport');
  if (port !== undefined) {
    const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (n >= 1 && n <= 65_535) fill('imap.port', n, 'imapport', port);
    else problems.push(`imapport=${port} is not a port number (1-65535); imap.port is not taken from it`);
  } else if (server !== undefined) {
    // vmbridge's own default is 993; Asterisk talked to 143 with the same voicemail.conf.
    fills.push({ path: ['imap', 'port'], value: ASTERISK_IMAP_PORT, from: 'imapserver= without imapport= (Asterisk uses 143)' });
  }

  const flags = opt('imapflags');
  if (flags !== undefined) {
    for (const flag of flags.split('/').map((f) => f.trim().toLowerCase()).filter((f) => f !== '')) {
      if (flag === 'ssl') fill('imap.secure', true, 'imapflags', flags);
      else if (flag === 'tls') {
        fill('imap.secure', false, 'imapflags', flags);
        fill('imap.requireTls', true, 'imapflags', flags);
      } else if (flag === 'notls') {
        fill('imap.secure', false, 'imapflags', flags);
        fill('imap.requireTls', false, 'imapflags', flags);
      } else if (flag === 'secure') fill('imap.requireTls', true, 'imapflags', flags);
      else if (flag === 'novalidate-cert') fill('imap.tls.rejectUnauthorized', false, 'imapflags', flags);
      else if (!NO_EFFECT.has(flag)) problems.push(`imapflags: /${flag} is not a flag vmbridge knows (ssl, tls, notls, secure, novalidate-cert, validate-cert); ignored`);
    }
  } else if (server !== undefined) {
    // Plain with STARTTLS when offered, as c-client does without flags.
    fills.push({ path: ['imap', 'secure'], value: false, from: 'imapserver= without imapflags= (Asterisk connects plain, with STARTTLS when offered)' });
  }

  const folder = opt('imapfolder');
  if (folder !== undefined) fill('imap.folders.inbox', folder, 'imapfolder', folder);
  const parent = opt('imapparentfolder');
  if (parent !== undefined) fill('imap.folders.parent', parent, 'imapparentfolder', parent);

  // authuser logs in with SASL PLAIN as itself for each mailbox's imapuser (c-client /authuser=).
  const authUser = opt('authuser');
  const authPassword = opt('authpassword');
  if (authUser !== undefined) {
    fill('imap.login.mode', 'master', 'authuser', authUser);
    fill('imap.login.masterUser', authUser, 'authuser', authUser);
    fill('imap.login.masterStyle', 'authzid', 'authuser', authUser);
    if (authPassword !== undefined) fills.push({ path: ['imap', 'login', 'masterPassword'], value: authPassword, from: 'authpassword=(hidden)' });
  } else if (authPassword !== undefined) {
    problems.push('authpassword= is set without authuser=: Asterisk then logs every mailbox in with that one password, which vmbridge does not do; set imappassword= per mailbox or imap.login.passwordsFile');
  }
  return { fills, problems };
}

/**
 * Why a mailbox cannot be synced where its own imapserver=/imapport=/imapflags=/imapfolder= put it,
 * or undefined when they agree with the installation's (or are not set). vmbridge talks to one IMAP
 * server with one folder layout; such a mailbox is left out (reported, nothing changed) rather than
 * synced into an account on a server it does not live on.
 */
export function ownServerProblem(
  options: Readonly<Record<string, string>>,
  imap: {
    readonly host: string;
    readonly port: number;
    readonly secure: boolean;
    readonly requireTls: boolean;
    readonly tls: { readonly rejectUnauthorized: boolean };
    readonly folders: { readonly inbox: string };
  },
): string | undefined {
  const own = (k: string): string | undefined => (Object.hasOwn(options, k) && options[k]!.trim() !== '' ? options[k]!.trim() : undefined);
  const server = own('imapserver');
  if (server !== undefined && server.toLowerCase() !== imap.host.toLowerCase()) {
    return `imapserver=${server} puts this mailbox on another IMAP server than imap.host (${imap.host}); vmbridge syncs with one IMAP server, so it is not synced`;
  }
  const port = own('imapport');
  if (port !== undefined && Number(port) !== imap.port) return `imapport=${port} differs from imap.port (${imap.port}); vmbridge syncs with one IMAP server, so it is not synced`;
  // The flags as the settings they would be, against the settings in use.
  const flags = own('imapflags');
  const inUse: Readonly<Record<string, boolean>> = { 'imap.secure': imap.secure, 'imap.requireTls': imap.requireTls, 'imap.tls.rejectUnauthorized': imap.tls.rejectUnauthorized };
  const differs = flags === undefined ? undefined : imapFromGeneral({ imapflags: flags }).fills.find((f) => inUse[f.path.join('.')] !== f.value);
  if (differs) {
    return `imapflags=${flags} means ${differs.path.join('.')}: ${String(differs.value)}, and the installation uses ${String(inUse[differs.path.join('.')])}; vmbridge uses one connection setting for every mailbox, so it is not synced`;
  }
  const folder = own('imapfolder');
  const sameFolder = (a: string, b: string): boolean => a === b || (a.toUpperCase() === 'INBOX' && b.toUpperCase() === 'INBOX');
  if (folder !== undefined && !sameFolder(folder, imap.folders.inbox)) {
    return `imapfolder=${folder} differs from imap.folders.inbox (${imap.folders.inbox}); vmbridge uses one folder layout for every mailbox, so it is not synced`;
  }
  return undefined;
}

/** The server settings that are taken from voicemail.conf together or not at all. */
const SERVER_KEYS = new Set(['imap.host', 'imap.port', 'imap.secure', 'imap.requireTls', 'imap.tls.rejectUnauthorized']);

export interface AppliedFills {
  /** Setting path (`imap.host`) → the voicemail.conf option it came from, for messages. */
  readonly filled: ReadonlyMap<string, string>;
  /** One line per setting filled, for the log at start (the master password is not shown). */
  readonly notes: readonly string[];
}

/**
 * Writes the fills into raw settings `data` (before validation) where the administrator set
 * nothing. The server is taken whole or not at all: with imap.host set in vmbridge's own settings,
 * none of imapserver/imapport/imapflags is used (they describe another server); the master login
 * likewise only when imap.login.mode is not set. Folders are taken one by one.
 */
export function applyImapFills(data: Record<string, unknown>, fills: readonly ImapFill[]): AppliedFills {
  const has = (path: readonly string[]): boolean => getAt(data, path) !== undefined;
  const ownServer = has(['imap', 'host']);
  const ownLogin = has(['imap', 'login', 'mode']);
  const filled = new Map<string, string>();
  const notes: string[] = [];
  for (const f of fills) {
    const key = f.path.join('.');
    if (SERVER_KEYS.has(key) && ownServer) continue;
    if (key.startsWith('imap.login.') && ownLogin) continue;
    if (key === 'imap.login.masterPassword' && has(['imap', 'login', 'masterPasswordFile'])) continue;
    if (has(f.path) || filled.has(key)) continue;
    if (!setAt(data, f.path, f.value)) continue;
    filled.set(key, f.from);
    notes.push(`${key} = ${key.endsWith('Password') ? '(hidden)' : JSON.stringify(f.value)} from voicemail.conf [general] ${f.from}`);
  }
  return { filled, notes };
}

/**
 * Fills raw settings `data` from the voicemail.conf at `path`. A voicemail.conf that cannot be read
 * fills nothing: loading the mailboxes reports it, naming the file.
 */
export async function fillImapFromVoicemailConf(data: Record<string, unknown>, path: string): Promise<AppliedFills & { problems: readonly string[] }> {
  let general: Readonly<Record<string, string>>;
  try {
    general = (await readVoicemailConf(path)).general;
  } catch {
    return { filled: new Map(), notes: [], problems: [] };
  }
  const found = imapFromGeneral(general);
  return { ...applyImapFills(data, found.fills), problems: found.problems.map((p) => `${path}: ${p}`) };
}
