/**
 * A private Dovecot IMAP server on 127.0.0.1 for one test file: own config, users, mail and
 * sockets under a short temp folder, started from the installed `dovecot` binary and stopped by
 * the PID it wrote. The config comes from dovecot.conf.tmpl, which scripts/servers.sh fills too.
 */
import { chmod, chown, copyFile, mkdir, readFile, appendFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { loginProbe } from './imap-probe.js';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { forgetOnExit, killOnExit, requireExecutable, runDaemonLauncher, shortTempDir, sleep, stopPid, stopServerOnce, tailOf, waitForPidFile } from './processes.js';

export interface DovecotUser {
  readonly user: string;
  readonly pass: string;
  /** Per-user quota, e.g. `*:messages=3` or `*:storage=200K`; replaces the whole default rule. */
  readonly quotaRule?: string;
}

export interface DovecotOptions {
  readonly users: readonly DovecotUser[];
  /** Log in as `<user>*<master user>` with the master password to act as any existing user. */
  readonly masterUser?: { readonly user: string; readonly pass: string };
  /** Post-login capabilities to leave out, e.g. ['UIDPLUS'] (see DOVECOT_IMAP_CAPABILITIES). */
  readonly omitCapabilities?: readonly string[];
  /**
   * Also accept OAuth2 bearer tokens (AUTH=XOAUTH2, AUTH=OAUTHBEARER), each checked at this RFC
   * 7662 introspection endpoint (test/support/oauth-introspection.ts) at every login: Dovecot's
   * oauth2 passdb, ahead of the passwords. A token's user must also be in `users` (the userdb).
   */
  readonly oauth2?: DovecotOauth2;
  /**
   * IMAP sessions at most per user and client IP (mail_max_userip_connections; the template's
   * 2000 otherwise). A login beyond it is refused.
   */
  readonly maxUserIpConnections?: number;
  /**
   * IMAP sessions one imap process serves (service imap's client_limit; 1 otherwise). Each imap
   * process in IDLE takes an inotify instance, and every process of an instance runs as one
   * user: past the kernel's fs.inotify.max_user_instances (128 by default) Dovecot logs
   * "Inotify instance limit ... exceeded, disabling" and looks at an idling folder only every
   * mailbox_idle_check_interval (30 s). Hundreds of IDLE sessions need a few per process.
   */
  readonly imapClientsPerProcess?: number;
  /**
   * Load Dovecot's push_notification plugin with the Lua driver and config/dovecot/vmbridge-push.lua,
   * which POSTs each mail transaction's events to `url` (the script's plugin settings
   * vmbridge_push_url, vmbridge_push_token, vmbridge_push_timeout_msecs). Without it no plugin
   * is loaded.
   */
  readonly push?: DovecotPush;
  /**
   * ssl = required with this certificate (PEM files): STARTTLS on `port`, implicit TLS on
   * `tlsPort`. Loopback clients count as secured for Dovecot, so plain logins still work (the
   * readiness probe uses one); what is under test is the client's certificate check.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** The doveadm HTTP API on a loopback port (DovecotServer.doveadmUrl), with this API key. */
  readonly doveadmApiKey?: string;
}

export interface DovecotPush {
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>`; none without it. */
  readonly token?: string;
  /** Per POST; the script's default (500) without it. */
  readonly timeoutMsecs?: number;
}

export interface DovecotOauth2 {
  /** The endpoint; client credentials for it go in the URL (`http://id:secret@127.0.0.1:port/path`). */
  readonly introspectionUrl: string;
  /** post: `token=` in a form body (default); get: `token` appended to the URL; auth: `Authorization: Bearer`. */
  readonly mode?: 'post' | 'get' | 'auth';
  /** The SASL mechanisms offered for tokens; default both. */
  readonly mechanisms?: readonly ('xoauth2' | 'oauthbearer')[];
}

export interface DovecotServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** With DovecotOptions.tls: the implicit-TLS (imaps) port. */
  readonly tlsPort?: number;
  /** With DovecotOptions.doveadmApiKey: `http://127.0.0.1:<port>/doveadm/v1`. */
  readonly doveadmUrl?: string;
  /** Instance folder: config, passwd files, mail, log, sockets. Removed by stop(). */
  readonly dir: string;
  readonly confPath: string;
  readonly logPath: string;
  /** The master process; stop() signals only this PID. */
  readonly pid: number;
  /** Adds a user while the server runs and returns once that user can log in. */
  addUser(user: string, pass: string, quotaRule?: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What Dovecot 2.3 advertises after login with this config. `imap_capability` replaces the whole
 * list (the quota plugin does not add QUOTA back), so a variant must spell out everything it keeps.
 */
export const DOVECOT_IMAP_CAPABILITIES: readonly string[] = (
  'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS ' +
  'THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS ' +
  'LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH ' +
  'LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY ' +
  'SPECIAL-USE QUOTA'
).split(' ');

const TEMPLATE = new URL('./dovecot.conf.tmpl', import.meta.url);
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
let instanceCounter = 0;

/** Who the Dovecot processes run as. Root can use the package's users; anyone else runs as self. */
interface RunAs {
  readonly loginUser: string;
  readonly internalUser: string;
  readonly internalGroup: string;
  readonly mailUid: number;
  readonly mailGid: number;
  /** Owner and mode of the passwd files, which the auth process (internal user) reads. */
  readonly passwdGid: number | undefined;
  readonly passwdMode: number;
}

function groupByName(name: string): number | undefined {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined) return Number(gid);
  }
  return undefined;
}

function groupById(gid: number): string | undefined {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , id] = line.split(':');
    if (group && Number(id) === gid) return group;
  }
  return undefined;
}

function runAs(): RunAs {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) {
    // imap-login refuses to run as root and mail processes may not be uid 0: use the package's
    // dovenull/dovecot users and nobody (65534) for all mail, which needs no useradd.
    const dovecotGid = groupByName('dovecot');
    if (dovecotGid === undefined) {
      throw new Error('the dovecot system group is missing; reinstall dovecot-core (scripts/install-deps.sh)');
    }
    return { loginUser: 'dovenull', internalUser: 'dovecot', internalGroup: 'dovecot', mailUid: 65534, mailGid: 65534, passwdGid: dovecotGid, passwdMode: 0o640 };
  }
  // Unprivileged: every Dovecot process runs as the current user (no chroot in the template).
  const me = userInfo();
  const group = groupById(me.gid);
  if (!group) throw new Error(`no group name for gid ${me.gid} in /etc/group`);
  return { loginUser: me.username, internalUser: me.username, internalGroup: group, mailUid: me.uid, mailGid: me.gid, passwdGid: undefined, passwdMode: 0o600 };
}

function checkField(what: string, value: string, forbidden: RegExp): void {
  if (value === '' || forbidden.test(value)) throw new Error(`invalid ${what} for a passwd-file: ${JSON.stringify(value)}`);
}

function passwdLine(u: DovecotUser): string {
  // ':' separates fields, '*' is the master-user separator, whitespace separates extra fields.
  checkField('user name', u.user, /[:*\s]/);
  checkField('password', u.pass, /[:\r\n]/);
  if (u.quotaRule !== undefined) checkField('quota rule', u.quotaRule, /\s/);
  const extra = u.quotaRule !== undefined ? `userdb_quota_rule=${u.quotaRule}` : '';
  return `${u.user}:{PLAIN}${u.pass}::::::${extra}\n`;
}

/** Fills every @NAME@ of the shared template; a placeholder left over is a bug. */
export function renderDovecotConf(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/@([A-Z_]+)@/g, (whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`dovecot.conf.tmpl: no value for ${whole}`);
    return v;
  });
}

function capabilityLine(omit: readonly string[] | undefined): string {
  if (!omit || omit.length === 0) return '';
  const drop = new Set(omit.map((c) => c.toUpperCase()));
  const known = new Set(DOVECOT_IMAP_CAPABILITIES.map((c) => c.toUpperCase()));
  // A typo would otherwise give a server that silently still has the capability.
  for (const c of drop) if (!known.has(c)) throw new Error(`omitCapabilities: Dovecot does not advertise ${c}`);
  return `imap_capability = ${DOVECOT_IMAP_CAPABILITIES.filter((c) => !drop.has(c.toUpperCase())).join(' ')}`;
}

/**
 * The oauth2 passdb (and the mechanisms it serves) included by the template, and its args file.
 * Refused tokens stop there (result_failure = return-fail): a token is never tried as a password.
 */
function oauth2Files(dir: string, o: DovecotOauth2): { conf: string; passdbArgs: string } {
  if (/[\s"]/.test(o.introspectionUrl)) throw new Error(`oauth2.introspectionUrl must not contain spaces or quotes: ${o.introspectionUrl}`);
  const mechanisms = (o.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ');
  if (mechanisms === '') throw new Error('oauth2.mechanisms must name at least one mechanism');
  const conf = [
    `auth_mechanisms = plain login ${mechanisms}`,
    'passdb {',
    '  driver = oauth2',
    `  mechanisms = ${mechanisms}`,
    `  args = ${join(dir, 'oauth2-passdb.conf.ext')}`,
    '  result_failure = return-fail',
    '}',
    '',
  ].join('\n');
  const passdbArgs = [
    `introspection_mode = ${o.mode ?? 'post'}`,
    `introspection_url = ${o.introspectionUrl}`,
    // Introspect every login, even for a token that looks like a JWT.
    'force_introspection = yes',
    // The token's owner must be the user logging in; an inactive token is refused.
    'username_attribute = username',
    'active_attribute = active',
    'active_value = true',
    'timeout_msecs = 5000',
    '',
  ].join('\n');
  return { conf, passdbArgs };
}



/** The script administrators install; each instance gets its own copy. */
export const PUSH_SCRIPT = new URL('../../config/dovecot/vmbridge-push.lua', import.meta.url);

/**
 * The plugins and settings the template includes for push notifications. The script runs inside
 * the mail processes, as the mail uid, so it is read from a copy in the instance folder.
 */
function pushConf(scriptPath: string, p: DovecotPush): string {
  // Values go into dovecot.conf unquoted, and Dovecot expands %-variables in plugin settings.
  const plain = (what: string, v: string): string => {
    if (v === '' || /[\s"'#\\%$]/.test(v)) throw new Error(`push.${what} must be non-empty without spaces, quotes, #, \\, % or $: ${JSON.stringify(v)}`);
    return v;
  };
  const lines = [
    'mail_plugins = $mail_plugins notify push_notification mail_lua push_notification_lua',
    'plugin {',
    `  push_notification_driver = lua:file=${scriptPath}`,
    `  vmbridge_push_url = ${plain('url', p.url)}`,
  ];
  if (p.token !== undefined) lines.push(`  vmbridge_push_token = ${plain('token', p.token)}`);
  if (p.timeoutMsecs !== undefined) {
    if (!Number.isInteger(p.timeoutMsecs) || p.timeoutMsecs < 1) throw new Error(`push.timeoutMsecs must be a whole number >= 1, not ${p.timeoutMsecs}`);
    lines.push(`  vmbridge_push_timeout_msecs = ${p.timeoutMsecs}`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

function tlsConf(tls: { certFile: string; keyFile: string }, tlsPort: number): string {
  for (const f of [tls.certFile, tls.keyFile]) if (/[\s"<]/.test(f)) throw new Error(`tls: ${f}: no spaces, quotes or < in the path`);
  return [
    'ssl = required',
    `ssl_cert = <${tls.certFile}`,
    `ssl_key = <${tls.keyFile}`,
    'service imap-login {',
    '  inet_listener imaps {',
    '    address = 127.0.0.1',
    `    port = ${tlsPort}`,
    '    ssl = yes',
    '  }',
    '}',
    '',
  ].join('\n');
}

async function waitForLogin(port: number, instance: string, user: string, pass: string, expect: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const status = await loginProbe(port, (greeting) => greeting.includes(`${instance} ready.`), user, pass);
      if (status === 'FOREIGN') throw new Error(`port ${port} is answered by another server, not this Dovecot instance`);
      if (status === expect) return;
      last = `LOGIN answered ${status}`;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Only "nobody listens yet" is worth waiting for; anything else is a real failure.
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw err;
      last = String(code);
    }
    if (Date.now() > deadline) throw new Error(`Dovecot on port ${port}: LOGIN ${user} never gave ${expect} (${last})`);
    await sleep(20);
  }
}



export async function startDovecot(opts: DovecotOptions): Promise<DovecotServer> {
  const bin = requireExecutable('dovecot', 'dovecot-core + dovecot-imapd');
  const who = runAs();
  const dir = await shortTempDir('vmb-');
  const confPath = join(dir, 'dovecot.conf');
  const logPath = join(dir, 'dovecot.log');
  const baseDir = join(dir, 'run');
  const usersPath = join(dir, 'users.passwd');
  const mastersPath = join(dir, 'masters.passwd');
  const instance = `vmb-${process.pid}-${++instanceCounter}`;
  let started = false;
  try {
    // The mail and auth processes run as other users: they must be able to traverse the folder.
    await chmod(dir, 0o711);
    await mkdir(join(dir, 'mail'));
    await chown(join(dir, 'mail'), who.mailUid, who.mailGid);
    await writeFile(usersPath, opts.users.map(passwdLine).join(''));
    await writeFile(mastersPath, opts.masterUser ? passwdLine(opts.masterUser) : '');
    const secretFiles = [usersPath, mastersPath];
    if (opts.oauth2) {
      const files = oauth2Files(dir, opts.oauth2);
      await writeFile(join(dir, 'oauth2.conf'), files.conf);
      // The args file names the introspection client's secret: readable by the auth process only.
      await writeFile(join(dir, 'oauth2-passdb.conf.ext'), files.passdbArgs);
      secretFiles.push(join(dir, 'oauth2-passdb.conf.ext'));
    }
    if (opts.maxUserIpConnections !== undefined) {
      if (!Number.isInteger(opts.maxUserIpConnections) || opts.maxUserIpConnections < 1) throw new Error(`maxUserIpConnections must be a whole number >= 1, not ${opts.maxUserIpConnections}`);
      await writeFile(join(dir, 'imap-limits.conf'), `mail_max_userip_connections = ${opts.maxUserIpConnections}\n`);
    }
    if (opts.imapClientsPerProcess !== undefined) {
      if (!Number.isInteger(opts.imapClientsPerProcess) || opts.imapClientsPerProcess < 1) throw new Error(`imapClientsPerProcess must be a whole number >= 1, not ${opts.imapClientsPerProcess}`);
      await writeFile(join(dir, 'imap-service.conf'), `client_limit = ${opts.imapClientsPerProcess}\n`);
    }
    if (opts.push) {
      const scriptPath = join(dir, 'vmbridge-push.lua');
      await copyFile(PUSH_SCRIPT, scriptPath);
      await chmod(scriptPath, 0o644);
      await writeFile(join(dir, 'push.conf'), pushConf(scriptPath, opts.push));
      // It names the bearer token.
      secretFiles.push(join(dir, 'push.conf'));
    }
    for (const p of secretFiles) {
      if (who.passwdGid !== undefined) await chown(p, 0, who.passwdGid);
      await chmod(p, who.passwdMode);
    }
    const template = await readFile(TEMPLATE, 'utf8');

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const tlsPort = opts.tls ? await freePort() : undefined;
      if (opts.tls && tlsPort !== undefined) await writeFile(join(dir, 'tls.conf'), tlsConf(opts.tls, tlsPort));
      const doveadmPort = opts.doveadmApiKey !== undefined ? await freePort() : undefined;
      if (opts.doveadmApiKey !== undefined && doveadmPort !== undefined) {
        const conf = join(dir, 'doveadm.conf');
        await writeFile(conf, `doveadm_api_key = ${opts.doveadmApiKey}\nservice doveadm {\n  inet_listener http {\n    address = 127.0.0.1\n    port = ${doveadmPort}\n  }\n}\n`);
        if (who.passwdGid !== undefined) await chown(conf, 0, who.passwdGid);
        await chmod(conf, who.passwdMode);
      }
      await writeFile(confPath, renderDovecotConf(template, {
        INSTANCE: instance,
        DIR: dir,
        BASE_DIR: baseDir,
        PORT: String(port),
        LOGIN_USER: who.loginUser,
        INTERNAL_USER: who.internalUser,
        INTERNAL_GROUP: who.internalGroup,
        MAIL_UID: String(who.mailUid),
        MAIL_GID: String(who.mailGid),
        CAPABILITY: capabilityLine(opts.omitCapabilities),
      }));
      // The master binds its listeners before it forks into the background, so a port taken in
      // the meantime shows up here as a failed start.
      const result = await runDaemonLauncher(bin, ['-c', confPath], join(dir, 'start.out'));
      if (result.code !== 0) {
        const why = `${result.output}\n${await tailOf(logPath)}`;
        if (/Address already in use/.test(why) && attempt < START_ATTEMPTS) continue;
        throw new Error(`dovecot -c ${confPath} failed (exit ${result.code}):\n${why.trim()}`);
      }
      const pid = await waitForPidFile(join(baseDir, 'master.pid'), 5_000);
      killOnExit(pid, dir);
      started = true;

      // A listening port is not enough: LOGIN also needs the auth process. A real user must get
      // OK; with no users, a made-up one must get NO (auth answered).
      const probe = opts.users[0] ?? { user: 'nobody-probe', pass: 'x' };
      try {
        await waitForLogin(port, instance, probe.user, probe.pass, opts.users[0] ? 'OK' : 'NO', READY_TIMEOUT_MS);
      } catch (err) {
        await stopPid(pid).catch(() => undefined);
        forgetOnExit(pid);
        started = false;
        throw new Error(`${(err as Error).message}\n${await tailOf(logPath)}`, { cause: err });
      }

      return {
        host: '127.0.0.1',
        port,
        ...(tlsPort !== undefined ? { tlsPort } : {}),
        ...(doveadmPort !== undefined ? { doveadmUrl: `http://127.0.0.1:${doveadmPort}/doveadm/v1` } : {}),
        dir,
        confPath,
        logPath,
        pid,
        async addUser(user: string, pass: string, quotaRule?: string): Promise<void> {
          await appendFile(usersPath, passwdLine(quotaRule === undefined ? { user, pass } : { user, pass, quotaRule }));
          // passwd-file re-reads a changed file, but checks at most once per wall-clock second:
          // probing in the same second would fail (and a failed LOGIN costs 500 ms).
          await sleep(1_010 - (Date.now() % 1_000));
          await waitForLogin(port, instance, user, pass, 'OK', 5_000);
        },
        stop: stopServerOnce(pid, dir),
      };
    }
  } catch (err) {
    if (!started) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
