/**
 * A private, throwaway Redis on 127.0.0.1 for one test file: no persistence, own temp folder,
 * started from the installed `redis-server` and stopped by the PID in its pidfile.
 */
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { isAlive, killOnExit, readPidFile, requireExecutable, runDaemonLauncher, shortTempDir, sleep, stopPid, stopServerOnce } from './processes.js';

export interface RedisServer {
  readonly url: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The redis-server process; stop() signals only this PID. */
  readonly pid: number;
  readonly dir: string;
  /** With RedisOptions.tls: rediss://127.0.0.1:<tlsPort>, next to the plain port. */
  readonly tlsUrl?: string;
  readonly tlsPort?: number;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** Also listen with TLS on a second port (--tls-port); clients need no certificate of their own. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** ACL users with a password and every right, besides the open default user the probe uses. */
  readonly users?: ReadonlyArray<{ readonly name: string; readonly pass: string }>;
}

const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;

/** Sends one inline command on a fresh connection and returns the raw reply. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (err?: Error): void => {
      socket.destroy();
      if (err) reject(err);
      else resolve(reply);
    };
    socket.setTimeout(2_000, () => finish(new Error('Redis probe timed out')));
    socket.on('error', (err) => finish(err));
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      // A simple reply is one line; a bulk reply ($len) is complete once len bytes follow.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (bulk ? Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2 : reply.endsWith('\r\n')) finish();
    });
  });
}


type Ready = { readonly pid: number } | { readonly failed: string };

/**
 * Waits for PONG from the server whose PID is in our pidfile. INFO's process_id must match it,
 * so a foreign Redis that got the port first is never taken for ours.
 */
async function waitReady(port: number, pidPath: string, logPath: string): Promise<Ready> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const pid = await readPidFile(pidPath);
    if (pid !== undefined && !isAlive(pid)) {
      return { failed: await readFile(logPath, 'utf8').catch(() => 'redis-server exited') };
    }
    if (pid !== undefined) {
      try {
        if ((await command(port, 'PING')).startsWith('+PONG')) {
          const info = await command(port, 'INFO server');
          if (new RegExp(`^process_id:${pid}\\r?$`, 'm').test(info)) return { pid };
          return { failed: `port ${port} is answered by another Redis` };
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw err;
      }
    }
    if (Date.now() > deadline) return { failed: `no PONG on port ${port} within ${READY_TIMEOUT_MS} ms` };
    await sleep(10);
  }
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const bin = requireExecutable('redis-server', 'redis-server');
  const dir = await shortTempDir('vmb-r-');
  const pidPath = join(dir, 'redis.pid');
  const logPath = join(dir, 'redis.log');
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const tlsPort = opts.tls ? await freePort() : undefined;
      const extra: string[] = [];
      if (opts.tls && tlsPort !== undefined) {
        extra.push('--tls-port', String(tlsPort), '--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile, '--tls-ca-cert-file', opts.tls.caFile, '--tls-auth-clients', 'no');
      }
      for (const u of opts.users ?? []) {
        if (!/^[A-Za-z0-9_-]+$/.test(u.name) || /[\s>]/.test(u.pass)) throw new Error(`Redis test user ${u.name}: name of letters, digits, _ and -; password without spaces or >`);
        extra.push('--user', u.name, 'on', `>${u.pass}`, '~*', '&*', '+@all');
      }
      await rm(pidPath, { force: true });
      await rm(logPath, { force: true });
      // --daemonize: the launcher returns at once and the pidfile names the server to stop later.
      const launched = await runDaemonLauncher(bin, [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dir,
        '--daemonize', 'yes',
        '--pidfile', pidPath,
        '--logfile', logPath,
        '--save', '',
        '--appendonly', 'no',
        ...extra,
      ], join(dir, 'start.out'));
      if (launched.code !== 0) throw new Error(`redis-server failed (exit ${launched.code}): ${launched.output}`);
      const ready = await waitReady(port, pidPath, logPath);
      if ('failed' in ready) {
        const stray = await readPidFile(pidPath);
        if (stray !== undefined && isAlive(stray)) await stopPid(stray);
        // The kernel may hand the same free port to someone else between freePort() and bind.
        if (/Address already in use|another Redis/.test(ready.failed) && attempt < START_ATTEMPTS) continue;
        throw new Error(`redis-server did not start:\n${ready.failed.trim()}`);
      }
      const { pid } = ready;
      killOnExit(pid, dir);
      return {
        url: `redis://127.0.0.1:${port}`,
        host: '127.0.0.1',
        port,
        pid,
        dir,
        ...(tlsPort !== undefined ? { tlsPort, tlsUrl: `rediss://127.0.0.1:${tlsPort}` } : {}),
        stop: stopServerOnce(pid, dir),
      };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
