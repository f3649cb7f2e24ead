/**
 * A private Cyrus IMAP server on 127.0.0.1 for one test file: own imapd.conf, cyrus.conf, SASL
 * user database, mail and sockets under a short temp folder, started from cyrus-common's `master`
 * and stopped by the PID it wrote. Cyrus's default namespace: personal folders under INBOX
 * ("INBOX.Work"), delimiter ".".
 *
 * Debian's cyrus-imapd package conflicts with dovecot-imapd, so the imapd binary is not installed
 * system-wide: scripts/install-deps.sh unpacks the package into .cache/cyrus/ of this repository
 * (or set VMB_CYRUS_IMAPD to an imapd binary). master, ctl_cyrusdb (cyrus-common) and saslpasswd2
 * (sasl2-bin) come from their packages.
 *
 * Cyrus logs only to syslog; start failures are reported with master's own output (-L).
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loginProbe } from './imap-probe.js';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { forgetOnExit, isAlive, killOnExit, requireExecutable, runDaemonLauncher, shortTempDir, sleep, stopPid, stopServerOnce, tailOf, waitForPidFile } from './processes.js';

export interface CyrusUser {
  readonly user: string;
  readonly pass: string;
}

export interface CyrusOptions {
  readonly users: readonly CyrusUser[];
  /** The IMAP admin, who may log in on behalf of any user (SASL PLAIN with an authzid). */
  readonly admin?: CyrusUser;
}

export interface CyrusServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Instance folder: config, databases, mail, sockets. Removed by stop(). */
  readonly dir: string;
  readonly confPath: string;
  /** The server name in the greeting, also the SASL realm of the users. */
  readonly serverName: string;
  readonly admin: CyrusUser;
  /** The master process; stop() signals only this PID (master takes its children down). */
  readonly pid: number;
  /** Adds a user while the server runs and returns once that user can log in. */
  addUser(user: string, pass: string): Promise<void>;
  stop(): Promise<void>;
}

/** cyrus-common's programs (Debian's libexec folder for Cyrus). */
export const CYRUS_LIBEXEC = '/usr/lib/cyrus/bin';
/** Where scripts/install-deps.sh unpacks the cyrus-imapd package. */
export const CYRUS_CACHE = fileURLToPath(new URL('../../.cache/cyrus/', import.meta.url));

const IMAP_TEMPLATE = new URL('./cyrus-imapd.conf.tmpl', import.meta.url);
const CYRUS_TEMPLATE = new URL('./cyrus.conf.tmpl', import.meta.url);
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;
const DEFAULT_ADMIN: CyrusUser = { user: 'cyrus', pass: 'cyrus-admin-pw' };
let instanceCounter = 0;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function installedVersion(pkg: string): string | undefined {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

interface CyrusPrograms {
  readonly master: string;
  readonly ctlCyrusdb: string;
  readonly imapd: string;
  readonly saslpasswd2: string;
}

/** The programs, or an error naming the one that is missing and how to get it. Never a skip. */
export function cyrusPrograms(): CyrusPrograms {
  const master = join(CYRUS_LIBEXEC, 'master');
  const ctlCyrusdb = join(CYRUS_LIBEXEC, 'ctl_cyrusdb');
  for (const p of [master, ctlCyrusdb]) {
    if (!executable(p)) throw new Error(`${p} is not installed (Debian package cyrus-common); run scripts/install-deps.sh first`);
  }
  const saslpasswd2 = requireExecutable('saslpasswd2', 'sasl2-bin');
  const fromEnv = process.env['VMB_CYRUS_IMAPD'];
  const imapd = fromEnv || join(CYRUS_CACHE, 'pkg/usr/lib/cyrus/bin/imapd');
  if (!executable(imapd)) {
    throw new Error(fromEnv
      ? `VMB_CYRUS_IMAPD=${fromEnv} is not an executable imapd`
      : `${imapd} is missing: the cyrus-imapd package is unpacked there (it conflicts with dovecot-imapd, so it is not installed); run scripts/install-deps.sh first, or set VMB_CYRUS_IMAPD`);
  }
  if (!fromEnv) {
    // The unpacked imapd links cyrus-common's private libraries: both must be the same build.
    const unpacked = readFileSyncOrUndefined(join(CYRUS_CACHE, 'version'));
    const common = installedVersion('cyrus-common');
    if (unpacked !== undefined && common !== undefined && unpacked !== common) {
      throw new Error(`${imapd} is from cyrus-imapd ${unpacked} but cyrus-common ${common} is installed; run scripts/install-deps.sh to unpack the matching one`);
    }
  }
  return { master, ctlCyrusdb, imapd, saslpasswd2 };
}

function readFileSyncOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Who Cyrus runs as. Root: master switches to the package's "cyrus" user. Anyone else: self. */
interface RunAs {
  /** uid/gid that must own the writable folders and the SASL database; undefined: leave as is. */
  readonly owner: { readonly uid: number; readonly gid: number } | undefined;
  /** The cyrus_user: line, or nothing. */
  readonly confLine: string;
}

function runAs(): RunAs {
  if ((process.getuid?.() ?? -1) === 0) {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'cyrus' && uid !== undefined && gid !== undefined) return { owner: { uid: Number(uid), gid: Number(gid) }, confLine: '' };
    }
    throw new Error('the cyrus system user is missing; reinstall cyrus-common (scripts/install-deps.sh)');
  }
  return { owner: undefined, confLine: `cyrus_user: ${userInfo().username}` };
}

function checkUser(u: CyrusUser): void {
  // "." is the hierarchy delimiter of user names here, "@" would name a realm; keep names plain.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(u.user)) throw new Error(`invalid Cyrus user name ${JSON.stringify(u.user)}: letters, digits, _ and - only`);
  if (u.pass === '' || /[\r\n]/.test(u.pass)) throw new Error(`invalid password for ${u.user}`);
}

export function renderCyrusTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/@([A-Z_]+)@/g, (whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`Cyrus template: no value for ${whole}`);
    return v;
  });
}

/** saslpasswd2 -c: creates (or replaces) the user in our SASL database, realm = server name. */
function saslpasswd(bin: string, dbPath: string, realm: string, u: CyrusUser): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-f', dbPath, '-p', '-c', '-u', realm, u.user], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`saslpasswd2 ${u.user} failed (exit ${code}): ${err.trim()}`))));
    child.stdin.end(`${u.pass}\n`);
  });
}



async function waitForLogin(port: number, instance: string, user: string, pass: string, timeoutMs: number, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const status = await loginProbe(port, (greeting) => greeting.includes(` ${instance} Cyrus IMAP`), user, pass);
      if (status === 'OK') return;
      if (status === 'FOREIGN') throw new PortTakenError(port);
      last = `LOGIN answered ${status}`;
    } catch (err) {
      if (err instanceof PortTakenError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      // Only "nobody listens yet" is worth waiting for; anything else is a real failure.
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw err;
      last = String(code);
    }
    if (pid !== undefined && !isAlive(pid)) throw new Error(`Cyrus master (PID ${pid}) exited before LOGIN ${user} worked (${last})`);
    if (Date.now() > deadline) throw new Error(`Cyrus on port ${port}: LOGIN ${user} never gave OK (${last})`);
    await sleep(25);
  }
}

class PortTakenError extends Error {
  constructor(port: number) {
    super(`port ${port} is answered by another server`);
  }
}



export async function startCyrus(opts: CyrusOptions): Promise<CyrusServer> {
  const bin = cyrusPrograms();
  const who = runAs();
  const admin = opts.admin ?? DEFAULT_ADMIN;
  for (const u of [admin, ...opts.users]) checkUser(u);
  const dir = await shortTempDir('vmb-c-');
  const instance = `vmb-cyrus-${process.pid}-${++instanceCounter}`;
  const confPath = join(dir, 'imapd.conf');
  const cyrusConfPath = join(dir, 'cyrus.conf');
  const pidPath = join(dir, 'master.pid');
  const masterLog = join(dir, 'master.log');
  const sasldb = join(dir, 'sasldb2');
  const ownIt = async (path: string): Promise<void> => {
    if (who.owner) await chown(path, who.owner.uid, who.owner.gid);
  };
  let started = false;
  try {
    // Cyrus's processes run as "cyrus" when we are root: they must be able to traverse the folder.
    await chmod(dir, 0o711);
    for (const sub of ['conf', 'spool', 'sieve', 'run']) {
      await mkdir(join(dir, sub));
      await ownIt(join(dir, sub));
    }
    for (const u of [admin, ...opts.users]) await saslpasswd(bin.saslpasswd2, sasldb, instance, u);
    await ownIt(sasldb);
    await chmod(sasldb, 0o600);
    await writeFile(confPath, renderCyrusTemplate(await readFile(IMAP_TEMPLATE, 'utf8'), {
      INSTANCE: instance,
      DIR: dir,
      CYRUS_USER: who.confLine,
      ADMIN: admin.user,
    }));
    const cyrusTemplate = await readFile(CYRUS_TEMPLATE, 'utf8');

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      await writeFile(cyrusConfPath, renderCyrusTemplate(cyrusTemplate, {
        CONF: confPath,
        LIBEXEC: CYRUS_LIBEXEC,
        IMAPD: bin.imapd,
        PORT: String(port),
      }));
      await rm(pidPath, { force: true });
      const result = await runDaemonLauncher(bin.master, ['-C', confPath, '-M', cyrusConfPath, '-p', pidPath, '-d', '-L', masterLog], join(dir, 'start.out'));
      if (result.code !== 0) {
        throw new Error(`${bin.master} -C ${confPath} failed (exit ${result.code}):\n${`${result.output}\n${await tailOf(masterLog)}`.trim()}`);
      }
      const pid = await waitForPidFile(pidPath, 5_000);
      killOnExit(pid, dir);
      started = true;
      try {
        // Ready means LOGIN works: master listens, imapd runs, and SASL finds the database.
        await waitForLogin(port, instance, admin.user, admin.pass, READY_TIMEOUT_MS, pid);
      } catch (err) {
        await stopPid(pid).catch(() => undefined);
        forgetOnExit(pid);
        started = false;
        // The kernel may hand the same free port to someone else between freePort() and bind.
        if (err instanceof PortTakenError && attempt < START_ATTEMPTS) continue;
        const out = await tailOf(masterLog);
        throw new Error(`${(err as Error).message}\n(Cyrus logs to syslog only; master's own output follows)\n${out}`, { cause: err });
      }

      return {
        host: '127.0.0.1',
        port,
        dir,
        confPath,
        serverName: instance,
        admin,
        pid,
        async addUser(user: string, pass: string): Promise<void> {
          checkUser({ user, pass });
          await saslpasswd(bin.saslpasswd2, sasldb, instance, { user, pass });
          await ownIt(sasldb);
          await waitForLogin(port, instance, user, pass, 5_000);
        },
        stop: stopServerOnce(pid, dir),
      };
    }
  } catch (err) {
    if (!started) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
