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
  /** A cluster node (--cluster-enabled), for startRedisCluster, with these redis.conf values. */
  readonly clusterNode?: { readonly nodeTimeoutMs: number; readonly requireFullCoverage: boolean };
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
      if (opts.clusterNode) {
        extra.push(
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(opts.clusterNode.nodeTimeoutMs),
          '--cluster-require-full-coverage', opts.clusterNode.requireFullCoverage ? 'yes' : 'no',
        );
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


export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** redis://127.0.0.1:<port> of the first node: the seed that redis.url names. */
  readonly url: string;
  /** The node whose primary serves the slot (from CLUSTER SLOTS). */
  ownerOf(slot: number): Promise<RedisServer>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** cluster-node-timeout: how soon a stopped node counts as failed. */
  readonly nodeTimeoutMs?: number;
  /**
   * cluster-require-full-coverage: with no, the slots of the nodes that are up are served while
   * a node without a replica is down (yes, Redis's default, stops the whole cluster).
   */
  readonly requireFullCoverage?: boolean;
}

const CLUSTER_READY_TIMEOUT_MS = 20_000;

/**
 * Three primaries on loopback ports, no replicas, joined by redis-cli --cluster create (which
 * spreads the 16384 slots over them), and returned once every node says cluster_state:ok.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const cli = requireExecutable('redis-cli', 'redis-tools');
  const clusterNode = { nodeTimeoutMs: opts.nodeTimeoutMs ?? 15_000, requireFullCoverage: opts.requireFullCoverage ?? true };
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    for (const n of nodes) await n.stop();
  };
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startRedis({ clusterNode }));
    const created = await runDaemonLauncher(cli, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], join(nodes[0]!.dir, 'cluster-create.out'), CLUSTER_READY_TIMEOUT_MS);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${created.code}): ${created.output}`);
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    for (const n of nodes) {
      for (;;) {
        const info = await command(n.port, 'CLUSTER INFO');
        if (/^cluster_state:ok\r?$/m.test(info)) break;
        if (Date.now() > deadline) throw new Error(`node ${n.port} not cluster_state:ok within ${CLUSTER_READY_TIMEOUT_MS} ms:\n${info}`);
        await sleep(50);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    url: nodes[0]!.url,
    async ownerOf(slot) {
      // CLUSTER SHARDS would be simpler but is Redis 7 only; CLUSTER NODES is one line per node:
      // <id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slot ranges...>
      const text = await command(nodes[0]!.port, 'CLUSTER NODES');
      for (const line of text.split(/\r?\n/)) {
        const fields = line.split(' ');
        if (!fields[2]?.includes('master')) continue;
        const serves = fields.slice(8).some((range) => {
          const [lo, hi = lo] = range.split('-').map(Number);
          return lo !== undefined && hi !== undefined && slot >= lo && slot <= hi;
        });
        const port = Number(/:(\d+)@/.exec(fields[1] ?? '')?.[1]);
        const node = nodes.find((n) => n.port === port);
        if (serves && node) return node;
      }
      throw new Error(`no node of the test cluster serves slot ${slot}:\n${text}`);
    },
    stop,
  };
}
