/**
 * Private, throwaway PostgreSQL and MariaDB servers on 127.0.0.1 for one test file, from Debian's
 * packages (postgresql, mariadb-server), each in its own temp folder and stopped by its PID. The
 * voicemail table is created as Asterisk's own schema scripts create it (asterisk-odbc-schema.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { isAlive, killOnExit, readPidFile, requireExecutable, shortTempDir, sleep, stopServerOnce, tailOf } from './processes.js';

export interface DatabaseServer {
  readonly kind: 'postgres' | 'mariadb';
  /** postgres://... or mysql://..., with the password. */
  readonly url: string;
  readonly password: string;
  readonly pid: number;
  readonly dir: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const PASSWORD = 'Vm-Db-Secret-4417';

function run(file: string, args: readonly string[], opts: { input?: string } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code: code ?? 1, output }));
    child.stdin.on('error', () => undefined); // a program that does not read its input may exit first
    child.stdin.end(opts.input ?? '');
  });
}

/** Debian installs PostgreSQL's server programs under /usr/lib/postgresql/<major>/bin. */
async function postgresBin(name: string): Promise<string> {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? (await readdir(root)).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const m of majors) {
    const p = join(root, m, 'bin', name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found under ${root}: install the Debian package postgresql (scripts/install-deps.sh does)`);
}

/**
 * PostgreSQL refuses to run as root; as root the server runs as the `postgres` user the Debian
 * package creates, in a folder given to that user.
 */
export async function startPostgres(): Promise<DatabaseServer> {
  const initdb = await postgresBin('initdb');
  const postgres = await postgresBin('postgres');
  const dir = await shortTempDir('vmb-pg-');
  const asRoot = process.getuid?.() === 0;
  const as = (file: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]);
  try {
    if (asRoot) {
      const id = await run('id', ['-u', 'postgres']);
      const gid = await run('id', ['-g', 'postgres']);
      if (id.code !== 0) throw new Error('running as root, but there is no postgres user (install the Debian package postgresql)');
      await chown(dir, Number(id.output.trim()), Number(gid.output.trim()));
    }
    const pwfile = join(dir, 'pw');
    await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
    if (asRoot) await run('chown', ['postgres', pwfile]);
    const data = join(dir, 'data');
    const [iFile, iArgs] = as(initdb, ['-D', data, '-U', 'vmbridge', '--pwfile', pwfile, '--auth=scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const init = await run(iFile, iArgs);
    if (init.code !== 0) throw new Error(`initdb failed: ${init.output}`);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logPath = join(dir, 'postgres.log');
      const [pFile, pArgs] = as(postgres, ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', `logging_collector=off`]);
      const child = spawn(pFile, pArgs, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
      let log = '';
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const pidPath = join(data, 'postmaster.pid');
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let ready = false;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) break;
        if (/ready to accept connections/.test(log)) {
          ready = true;
          break;
        }
        await sleep(20);
      }
      await writeFile(logPath, log).catch(() => undefined);
      if (!ready) {
        if (child.exitCode === null) child.kill('SIGTERM');
        if (/could not bind|Address already in use/.test(log) && attempt < 5) continue;
        throw new Error(`postgres did not start:\n${log}`);
      }
      // runuser forks: the server's own PID is in postmaster.pid.
      const pid = (await readPidFile(pidPath)) ?? child.pid!;
      killOnExit(pid, dir);
      const stopOnce = stopServerOnce(pid, dir);
      return { kind: 'postgres', url: `postgres://vmbridge:${PASSWORD}@127.0.0.1:${port}/postgres`, password: PASSWORD, pid, dir, stop: stopOnce };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function startMariadb(): Promise<DatabaseServer> {
  const installDb = requireExecutable('mariadb-install-db', 'mariadb-server');
  const mariadbd = requireExecutable('mariadbd', 'mariadb-server');
  const client = requireExecutable('mariadb', 'mariadb-client');
  const dir = await shortTempDir('vmb-my-');
  try {
    const data = join(dir, 'data');
    const user = process.getuid?.() === 0 ? ['--user=root'] : [];
    const init = await run(installDb, ['--no-defaults', `--datadir=${data}`, ...user, '--auth-root-authentication-method=normal', '--skip-test-db']);
    if (init.code !== 0) throw new Error(`mariadb-install-db failed: ${init.output}`);
    const socket = join(dir, 'sock');
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const pidPath = join(dir, 'mariadb.pid');
      const errLog = join(dir, 'err.log');
      const child = spawn(mariadbd, ['--no-defaults', `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1', ...user, '--skip-log-bin', '--innodb-buffer-pool-size=16M', '--innodb-flush-log-at-trx-commit=0', `--log-error=${errLog}`, `--pid-file=${pidPath}`], { stdio: 'ignore' });
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let ready = false;
      while (Date.now() < deadline && child.exitCode === null) {
        if (/ready for connections/.test(await readFile(errLog, 'utf8').catch(() => ''))) {
          ready = true;
          break;
        }
        await sleep(20);
      }
      if (!ready) {
        if (child.exitCode === null) child.kill('SIGTERM');
        const tail = await tailOf(errLog);
        if (/Address already in use|Can't start server: Bind/.test(tail) && attempt < 5) continue;
        throw new Error(`mariadbd did not start:\n${tail}`);
      }
      const pid = (await readPidFile(pidPath)) ?? child.pid!;
      if (!isAlive(pid)) throw new Error('mariadbd exited right after starting');
      killOnExit(pid, dir);
      const setup = await run(client, ['--no-defaults', '-S', socket, '-uroot'], {
        input: `CREATE DATABASE asterisk; CREATE USER 'vmbridge'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}'; GRANT ALL ON asterisk.* TO 'vmbridge'@'127.0.0.1'; FLUSH PRIVILEGES;`,
      });
      if (setup.code !== 0) throw new Error(`mariadb setup failed: ${setup.output}`);
      return { kind: 'mariadb', url: `mysql://vmbridge:${PASSWORD}@127.0.0.1:${port}/asterisk`, password: PASSWORD, pid, dir, stop: stopServerOnce(pid, dir) };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
