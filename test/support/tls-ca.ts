/**
 * A private certificate authority made with the installed `openssl` at test time, for the TLS
 * tests: a CA, a server certificate for 127.0.0.1 and localhost, one for another host name signed
 * by the same CA, and a second CA with its own certificate for 127.0.0.1. Nothing is kept between
 * runs; one set is made per test process and removed when it exits.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireExecutable } from './processes.js';

const run = promisify(execFile);

/** A certificate and its key, as files and as PEM text. */
export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA that signed `server` and `wrongHost` (PEM file and text). */
  readonly caFile: string;
  readonly ca: string;
  /** For IP 127.0.0.1 and DNS localhost, signed by the CA. */
  readonly server: TestCert;
  /** For wrong-host.example.invalid only, signed by the same CA. */
  readonly wrongHost: TestCert;
  /** A second, unrelated CA... */
  readonly otherCaFile: string;
  /** ...and a certificate for 127.0.0.1 and localhost that it signed. */
  readonly otherCaServer: TestCert;
}

// EC keys: as good for the tests as RSA and much faster to make on a busy machine.
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: readonly string[]): Promise<void> {
  const bin = requireExecutable('openssl', 'openssl');
  try {
    await run(bin, [...args], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

async function makeCa(dir: string, name: string, subject: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  await openssl([
    'req', '-x509', ...KEY_ARGS, '-keyout', keyFile, '-out', certFile, '-days', '3', '-subj', subject,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certFile, keyFile };
}

async function makeLeaf(dir: string, name: string, ca: { certFile: string; keyFile: string }, altNames: string): Promise<TestCert> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames}\n`);
  await openssl(['req', ...KEY_ARGS, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(Date.now()), '-out', certFile, '-days', '3', '-extfile', ext]);
  // Servers that drop privileges (Dovecot's login processes, Redis as another user) read these.
  await chmod(keyFile, 0o644);
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

async function makePki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vmb-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const ca = await makeCa(dir, 'ca', '/CN=vmbridge test CA');
  const other = await makeCa(dir, 'other-ca', '/CN=vmbridge other test CA');
  const local = 'IP:127.0.0.1,DNS:localhost';
  const [server, wrongHost, otherCaServer] = await Promise.all([
    makeLeaf(dir, 'server', ca, local),
    makeLeaf(dir, 'wrong-host', ca, 'DNS:wrong-host.example.invalid'),
    makeLeaf(dir, 'other-ca-server', other, local),
  ]);
  return { dir, caFile: ca.certFile, ca: await readFile(ca.certFile, 'utf8'), server, wrongHost, otherCaFile: other.certFile, otherCaServer };
}

let pki: Promise<TestPki> | undefined;

/** The test process's private CA and certificates (made on first use). */
export function testPki(): Promise<TestPki> {
  pki ??= makePki();
  return pki;
}
