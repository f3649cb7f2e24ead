/**
 * A real SIP peer on 127.0.0.1 for the SIP NOTIFY tests: a private Kamailio with a throwaway
 * config, no database, its own pid file and runtime folder, stopped by its PID only.
 *
 * Why Kamailio: it is the SIP proxy that sits in front of phones in most networks this target is
 * for, so "Kamailio accepts it" is the claim worth testing; it parses every request with its own
 * strict parser, and its `auth` module computes Digest (qop=auth, MD5 or SHA-256) independently
 * of our code. sipp would also be a real peer, but it replays what a scenario file says instead
 * of judging the request, and it checks no digest.
 *
 * It listens on UDP and TCP on one port, and with `tls` (a certificate from test/support/tls-ca.ts)
 * also on TLS on a second port (Kamailio's tls module, Debian package kamailio-tls-modules).
 *
 * What it does with a request (see `config()` below): OPTIONS gets 200 (the readiness probe);
 * a NOTIFY without valid credentials gets 401 with a Digest challenge; with valid credentials for
 * the configured user, 200. Every NOTIFY is logged in full (base64 on one line) with the status
 * it got and the transport it came over (Kamailio's $pr: udp, tcp or tls), so tests can read
 * exactly what arrived and how.
 *
 * Debian packages: kamailio, kamailio-tls-modules. On a host with systemd the package also enables a system-wide
 * kamailio.service on port 5060; these tests never use or touch that one.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort } from './ports.js';
import type { TestCert } from './tls-ca.js';
import { forgetOnExit, isAlive, killOnExit, readPidFile, requireExecutable, shortTempDir, sleep, stopPid, stopServerOnce } from './processes.js';

export interface SipPeerOptions {
  /** Digest username the peer accepts. Default `vmbridge`. */
  readonly username?: string;
  /** Digest password the peer accepts. Default: random. */
  readonly password?: string;
  /** Challenge algorithm (Kamailio auth module `algorithm`). Default MD5. */
  readonly algorithm?: 'MD5' | 'SHA-256';
  /** false: answer every NOTIFY with 200 without asking for credentials. Default true. */
  readonly challenge?: boolean;
  /** Also listen on TLS (on `tlsPort`), presenting this certificate. Default: no TLS. */
  readonly tls?: TestCert;
}

/** One NOTIFY the peer received, and the status it answered with. */
export interface ReceivedRequest {
  readonly answered: number;
  /** What it came over, as Kamailio says ($pr): `udp`, `tcp` or `tls`. */
  readonly transport: string;
  readonly raw: string;
  readonly requestLine: string;
  /** Header lines as received: [name, value]. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  /** First value of a header, name case-insensitive. */
  header(name: string): string | undefined;
}

export interface SipPeer {
  readonly host: '127.0.0.1';
  /** UDP and TCP. */
  readonly port: number;
  /** TLS, when started with `tls`. */
  readonly tlsPort: number | undefined;
  readonly realm: string;
  readonly username: string;
  readonly password: string;
  readonly algorithm: 'MD5' | 'SHA-256';
  /** The kamailio main process; stop() signals only this PID. */
  readonly pid: number;
  readonly dir: string;
  /** Every NOTIFY received so far, in order. */
  received(): Promise<ReceivedRequest[]>;
  stop(): Promise<void>;
}

const REALM = 'vmbridge.test';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const SAFE = /^[A-Za-z0-9_.+-]+$/;

function config(port: number, tlsPort: number | undefined, o: { username: string; password: string; algorithm: string; challenge: boolean; tls: TestCert | undefined }): string {
  // One line per received request: the status it got, the transport, and the whole message in
  // base64, so the test sees the bytes exactly (headers, blank line, body) without log-format guesswork.
  const log = (status: string): string => `xlog("L_NOTICE", "VMBPEER ${status} $pr $(mb{s.encode.base64})\\n");`;
  // The tls module first: it must set up OpenSSL's memory before any other module uses it.
  const tls =
    o.tls && tlsPort !== undefined
      ? `listen=tls:127.0.0.1:${tlsPort}
enable_tls=yes

loadmodule "tls.so"
modparam("tls", "certificate", "${o.tls.certFile}")
modparam("tls", "private_key", "${o.tls.keyFile}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "verify_certificate", 0)
modparam("tls", "require_certificate", 0)
`
      : '';
  return `#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
listen=udp:127.0.0.1:${port}
listen=tcp:127.0.0.1:${port}
${tls}auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off

loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "auth.so"
modparam("xlog", "buf_size", 16384)
modparam("auth", "algorithm", "${o.algorithm === 'MD5' ? '' : o.algorithm}")

request_route {
  if ($rm == "OPTIONS") { sl_send_reply("200", "OK"); exit; }
  if ($rm != "NOTIFY") { ${log('405')} sl_send_reply("405", "Method Not Allowed"); exit; }
${o.challenge ? `  # The password is plain text here (flag 0); www_challenge flag 1 asks for qop=auth.
  if (!pv_www_authenticate("${REALM}", "${o.password}", "0") || $au != "${o.username}") {
    ${log('401')}
    www_challenge("${REALM}", "1");
    exit;
  }
` : ''}  ${log('200')}
  sl_send_reply("200", "OK");
}
`;
}

function parseRequest(answered: number, transport: string, raw: string): ReceivedRequest {
  const split = raw.indexOf('\r\n\r\n');
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const [requestLine = '', ...lines] = head.split('\r\n');
  const headers = lines.map((line): readonly [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
  });
  return {
    answered,
    transport,
    raw,
    requestLine,
    headers,
    body: split >= 0 ? raw.slice(split + 4) : '',
    header: (name) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
  };
}

/** Sends OPTIONS until the peer answers; true once it does. */
async function probe(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
      const timer = setTimeout(() => resolve(false), 300);
      socket.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      socket.on('message', (m) => {
        if (m.toString('latin1').startsWith('SIP/2.0 200') && m.includes(branch)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      socket.connect(port, '127.0.0.1', () => {
        const { port: local } = socket.address();
        socket.send(
          [
            `OPTIONS sip:probe@127.0.0.1:${port} SIP/2.0`,
            `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch};rport`,
            'Max-Forwards: 70',
            `From: <sip:probe@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
            `To: <sip:probe@127.0.0.1:${port}>`,
            `Call-ID: ${randomBytes(8).toString('hex')}`,
            'CSeq: 1 OPTIONS',
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n'),
        );
      });
    });
  } finally {
    socket.close();
  }
}

/** True once something accepts a TCP connection on the port (the TLS listener). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startSipPeer(options: SipPeerOptions = {}): Promise<SipPeer> {
  const bin = requireExecutable('kamailio', 'kamailio');
  const username = options.username ?? 'vmbridge';
  const password = options.password ?? randomBytes(9).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x');
  const algorithm = options.algorithm ?? 'MD5';
  // They are pasted into the config; keep them to characters that need no quoting there.
  if (!SAFE.test(username) || !SAFE.test(password)) throw new Error('sip peer: username and password must match /^[A-Za-z0-9_.+-]+$/');
  const dir = await shortTempDir('vmb-sip-');
  const cfgPath = join(dir, 'kamailio.cfg');
  const pidPath = join(dir, 'kamailio.pid');
  const logPath = join(dir, 'kamailio.log');
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const tlsPort = options.tls ? await freePort() : undefined;
      await writeFile(cfgPath, config(port, tlsPort, { username, password, algorithm, challenge: options.challenge ?? true, tls: options.tls }));
      await rm(pidPath, { force: true });
      const out = await open(logPath, 'w');
      // -DD: the main process stays in the foreground as our child; -E: log to stderr (the file).
      const child = spawn(bin, ['-f', cfgPath, '-P', pidPath, '-Y', dir, '-w', dir, '-DD', '-E', '-m', '32', '-M', '4'], {
        stdio: ['ignore', out.fd, out.fd],
      });
      await out.close();
      const pid = child.pid;
      if (pid === undefined) throw new Error('kamailio could not be started');
      child.unref();
      killOnExit(pid, dir);
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let failure: string | undefined;
      for (;;) {
        if (!isAlive(pid)) {
          failure = await readFile(logPath, 'utf8').catch(() => 'kamailio exited');
          break;
        }
        // The pid file names our process: a foreign SIP server that got the port is never taken for ours.
        if ((await readPidFile(pidPath)) === pid && (await probe(port)) && (tlsPort === undefined || (await accepts(tlsPort)))) break;
        if (Date.now() > deadline) {
          failure = `no answer on udp 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`;
          break;
        }
        await sleep(50);
      }
      if (failure !== undefined) {
        if (isAlive(pid)) await stopPid(pid);
        forgetOnExit(pid);
        // The kernel may hand the same free port to someone else between freePort() and bind.
        if (/Address already in use|bind/i.test(failure) && attempt < START_ATTEMPTS) continue;
        throw new Error(`kamailio did not start:\n${failure.trim().split('\n').slice(-20).join('\n')}`);
      }
      return {
        host: '127.0.0.1',
        port,
        tlsPort,
        realm: REALM,
        username,
        password,
        algorithm,
        pid,
        dir,
        async received(): Promise<ReceivedRequest[]> {
          const text = await readFile(logPath, 'utf8');
          return [...text.matchAll(/VMBPEER ([0-9]{3}) ([a-z]+) ([A-Za-z0-9+/=]+)\s*$/gm)].map((m) =>
            parseRequest(Number(m[1]), m[2] ?? '', Buffer.from(m[3] ?? '', 'base64').toString('utf8')),
          );
        },
        stop: stopServerOnce(pid, dir),
      };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
