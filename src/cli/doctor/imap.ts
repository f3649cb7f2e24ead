/**
 * The IMAP server as vmbridge will use it: a login for each distinct account of voicemail.conf
 * (bounded), the capabilities it offers and what vmbridge does because of each, and where the
 * voicemail folders and the trash folder are.
 */
import { ImapFlow } from 'imapflow';
import type { Settings } from '../../config/schema.js';
import { accountKey, type ImapAccount } from '../../imap/account.js';
import { CAPABILITY_NAMES, capabilitiesOf, explainCapabilities } from '../../imap/capabilities.js';
import { checkLogin, imapOptions, describeImapError, isAuthFailure, type ImapServerSettings } from '../../imap/connect.js';
import { deleteStrategy, describeStrategy, usesTrash } from '../../imap/delete-strategy.js';
import { folderExists, hierarchyDelimiter, rolePaths, trashFolder } from '../../imap/folders.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

/** A login that has not finished after this long is reported as a timeout. */
const LOGIN_TIMEOUT_MS = 30_000;

/**
 * auth: the credentials or token were refused. limit: too many connections for the user from this
 * address ([LIMIT]). unavailable: the server cannot log anyone in right now for a reason other
 * than the credentials ([UNAVAILABLE], ...). The others: the connection itself.
 */
export type LoginFailureKind = 'auth' | 'limit' | 'unavailable' | 'tls' | 'refused' | 'timeout' | 'dns' | 'config' | 'other';

export interface LoginFailure {
  readonly kind: LoginFailureKind;
  readonly text: string;
}

/** Failures that say nothing about one account but about the server: trying more accounts is moot. */
const SERVER_LEVEL: ReadonlySet<LoginFailureKind> = new Set(['tls', 'refused', 'timeout', 'dns']);

class LoginTimeout extends Error {}

export function classifyLoginError(
  err: unknown,
  server: Pick<ImapServerSettings, 'host' | 'port' | 'requireTls'> & Partial<Pick<ImapServerSettings, 'maxConnectionsPerUser'>>,
): LoginFailure {
  const where = `${server.host}:${server.port}`;
  if (err instanceof LoginTimeout) return { kind: 'timeout', text: `no answer from ${where} within ${LOGIN_TIMEOUT_MS / 1000} s` };
  const e = (err && typeof err === 'object' ? err : {}) as {
    authenticationFailed?: boolean; tlsFailed?: boolean; code?: string; message?: string; responseText?: string; serverResponseCode?: string;
  };
  if (e.authenticationFailed) {
    const said = [e.serverResponseCode && `[${e.serverResponseCode}]`, e.responseText].filter(Boolean).join(' ');
    const saidPart = said ? ` (server said: ${said})` : '';
    // Turned down for something other than the credentials (RFC 5530 codes; as the service sees it).
    if (!isAuthFailure(err)) {
      if (e.serverResponseCode?.toUpperCase() === 'LIMIT') {
        const perUser = server.maxConnectionsPerUser !== undefined ? ` (now ${server.maxConnectionsPerUser})` : '';
        return {
          kind: 'limit',
          text: `too many connections: the server allows no more IMAP sessions for this user from this address${saidPart}. The password is not the problem. Other sessions of this user from this host hold them (a running vmbridge, a mail client, webmail): run the doctor again when fewer are open, or raise the server's limit (Dovecot: mail_max_userip_connections); imap.maxConnectionsPerUser${perUser} must stay below it, leaving room for those other sessions`,
        };
      }
      return {
        kind: 'unavailable',
        text: `the server cannot log this user in right now, for a reason other than the password or token${saidPart}: its authentication backend (user database, LDAP, OAuth2 introspection) or mail storage is failing or unreachable. See the mail server's log and run the doctor again once that is fixed; the service retries such logins without the refused-login back-off`,
      };
    }
    return { kind: 'auth', text: `authentication failed${saidPart}` };
  }
  if (e.tlsFailed) {
    return { kind: 'tls', text: `TLS: ${e.message ?? 'STARTTLS failed'}${server.requireTls ? ' (imap.requireTls is true: vmbridge does not send passwords unencrypted)' : ''}` };
  }
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED') return { kind: 'refused', text: `connection refused by ${where} (nothing listens there?)` };
  if (['ETIMEDOUT', 'ETIMEOUT', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT'].includes(code)) {
    return { kind: 'timeout', text: `timed out talking to ${where}: ${e.message ?? code}` };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { kind: 'dns', text: `host name ${server.host} not found (${code})` };
  if (/CERT|SSL|TLS|EPROTO|UNABLE_TO_VERIFY|SELF_SIGNED/i.test(code)) {
    return { kind: 'tls', text: `TLS: ${e.message ?? code} (${code}); see imap.secure, imap.tls.caFile and imap.tls.servername` };
  }
  if (e.code === 'IMAP' && e.message) return { kind: 'config', text: e.message };
  return { kind: 'other', text: describeImapError(err) };
}

/** Removes a secret from text meant for the screen, in case a server echoes it back. */
function scrub(text: string, secret: string | undefined): string {
  return secret && secret.length >= 3 ? text.split(secret).join('***') : text;
}

async function login(server: ImapServerSettings, account: ImapAccount): Promise<{ client: ImapFlow } | { failure: LoginFailure }> {
  let client: ImapFlow;
  try {
    // Shorter timeouts than the service's: the doctor reports, it does not wait out a slow server.
    client = new ImapFlow({ ...(await imapOptions(server, account)), connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: LOGIN_TIMEOUT_MS });
  } catch (err) {
    return { failure: classifyLoginError(err, server) };
  }
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new LoginTimeout()), LOGIN_TIMEOUT_MS);
      }),
    ]);
    await checkLogin(client, account);
    return { client };
  } catch (err) {
    client.close();
    const failure = classifyLoginError(err, server);
    const secret = server.login.mode === 'master' ? server.login.masterPassword : account.password;
    return { failure: { kind: failure.kind, text: scrub(failure.text, secret) } };
  } finally {
    clearTimeout(timer);
  }
}

function transport(server: ImapServerSettings): string {
  if (server.secure) return 'TLS';
  return server.requireTls ? 'STARTTLS required' : 'plain; STARTTLS if offered';
}

export const imapCheck: DoctorCheck = {
  name: 'imap',
  describes: 'IMAP (imap.*): a login for each distinct account of voicemail.conf; IDLE, NOTIFY, CONDSTORE, QRESYNC, MOVE, UIDPLUS, QUOTA, SPECIAL-USE and what vmbridge does because of each; the hierarchy delimiter and where Work, Family, Friends and the trash folder are',
  async run(ctx) {
    const server = ctx.settings.imap;
    const section = `IMAP ${server.host}:${server.port} (${transport(server)})`;
    const read = await ctx.directory();
    if (!read.ok) return [{ section, status: 'fail', message: 'no account to log in with: voicemail.conf could not be read (see above)' }];

    // Distinct accounts in voicemail.conf order, each with the mailboxes it holds.
    const accounts = new Map<string, { account: ImapAccount; boxes: string[] }>();
    for (const [key, box] of read.directory.boxes) {
      const k = accountKey(box.account);
      const entry = accounts.get(k) ?? { account: box.account, boxes: [] };
      entry.boxes.push(key);
      accounts.set(k, entry);
    }
    if (accounts.size === 0) {
      return [{ section, status: 'warn', message: 'no mailbox of voicemail.conf has an IMAP account: nothing to log in with' }];
    }

    const master = server.login.mode === 'master';
    // One master login proves the master credentials; every account uses the same ones.
    const limit = master ? 1 : ctx.maxAccounts;
    const all = [...accounts.values()];
    const tried = all.slice(0, limit);
    const out: CheckResult[] = [];
    let first: { client: ImapFlow; user: string } | undefined;
    let serverDown: LoginFailure | undefined;
    let attempted = 0;
    try {
      for (const { account, boxes } of tried) {
        if (serverDown) break;
        attempted++;
        const who = !master ? account.user
          : server.login.masterStyle === 'authzid' ? `${server.login.masterUser ?? '?'} as ${account.user} (master login, SASL authzid)`
          : `${account.user}${server.login.masterSeparator}${server.login.masterUser ?? '?'} (master login)`;
        const mailboxes = `${boxes.length === 1 ? 'mailbox' : 'mailboxes'} ${boxes.slice(0, 5).join(', ')}${boxes.length > 5 ? ', ...' : ''}`;
        const result = await login(server, account);
        if ('failure' in result) {
          out.push({ section, status: 'fail', message: `login ${who}: ${result.failure.text}`, data: { user: account.user, login: 'failed', reason: result.failure.kind } });
          if (SERVER_LEVEL.has(result.failure.kind)) serverDown = result.failure;
          continue;
        }
        const vendor = result.client.serverInfo?.name;
        out.push({ section, status: 'ok', message: `login ${who}: works (${mailboxes})${vendor ? `; server: ${vendor}${result.client.serverInfo?.version ? ` ${result.client.serverInfo.version}` : ''}` : ''}`, data: { user: account.user, login: 'ok' } });
        if (!first) first = { client: result.client, user: account.user };
        else await result.client.logout().catch(() => result.client.close());
      }
      const notTried = all.length - attempted;
      if (notTried > 0) {
        const why = serverDown
          ? 'the server could not be used at all'
          : master ? 'they use the same master login' : `at most ${limit} are tried; --accounts N to change`;
        out.push({ section, status: 'info', message: `${notTried} of ${all.length} account${all.length === 1 ? '' : 's'} not tried: ${why}`, data: { accounts: all.length, tried: attempted, notTried } });
      }
      if (!first) return out;
      out.push(...(await describeServer(first.client, first.user, ctx.settings)));
      return out;
    } finally {
      if (first) await first.client.logout().catch(() => first?.client.close());
    }
  },
};

async function describeServer(client: ImapFlow, user: string, settings: Settings): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const caps = capabilitiesOf(client);
  const trash = await trashFolder(client, settings.imap.folders);
  const capSection = `IMAP capabilities (offered to ${user} after login)`;
  const notes = explainCapabilities(caps, {
    deleteMode: settings.imap.deleteMode,
    trash: trash.path,
    trashSource: trash.source,
    sweepSeconds: settings.spool.sweepSeconds,
    idleAccounts: settings.imap.idle.maxAccounts,
    idleNotify: settings.imap.idle.notify,
  });
  for (const n of notes) {
    out.push({
      section: capSection,
      status: n.level,
      message: `${n.name}: ${n.present ? 'yes' : 'missing'} -> ${n.consequence}`,
      data: { capability: n.name, present: n.present },
    });
  }
  // Anything outside the list above is shown once, for whoever compares servers.
  const others = [...client.capabilities.keys()].filter((c) => !(CAPABILITY_NAMES as readonly string[]).includes(c) && !c.startsWith('AUTH='));
  out.push({ section: capSection, status: 'info', message: `also offered: ${others.join(' ') || '(nothing else)'}` });

  const folderSection = `IMAP folders (as ${user} sees them)`;
  const delimiter = await hierarchyDelimiter(client);
  out.push({ section: folderSection, status: 'info', message: `hierarchy delimiter ${JSON.stringify(delimiter)}`, data: { delimiter } });
  const paths = await rolePaths(client, settings.imap.folders);
  const state = async (path: string): Promise<string> => ((await folderExists(client, path)) ? 'exists' : 'created when first needed');
  out.push({ section: folderSection, status: 'info', message: `new, old and urgent voicemail: ${JSON.stringify(paths.inbox)} (${await state(paths.inbox)})`, data: { role: 'inbox', path: paths.inbox } });
  for (const [role, name] of [['work', 'Work'], ['family', 'Family'], ['friends', 'Friends']] as const) {
    out.push({ section: folderSection, status: 'info', message: `${name}: ${JSON.stringify(paths[role])} (${await state(paths[role])})`, data: { role, path: paths[role] } });
  }
  const from = trash.source === 'configured' ? 'imap.folders.trash' : trash.source === 'special-use' ? 'the server\'s \\Trash folder' : 'no folder is marked \\Trash, so the usual name';
  const strategy = deleteStrategy(settings.imap.deleteMode, caps);
  const use = usesTrash(strategy) ? 'deleted voicemail emails go here' : `not used: ${describeStrategy(strategy, trash.path)}`;
  out.push({ section: folderSection, status: 'info', message: `Trash: ${JSON.stringify(trash.path)} (${from}; ${await state(trash.path)}); ${use}`, data: { role: 'trash', path: trash.path, source: trash.source, used: usesTrash(strategy) } });
  return out;
}
