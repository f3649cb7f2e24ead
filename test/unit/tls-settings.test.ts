/**
 * The TLS and secret-file checks at start (src/config/tls-checks.ts, secret-file.ts) and the
 * wording of a refused certificate (src/tls.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/load-settings.js';
import { ConfigError } from '../../src/errors.js';
import { redisOptions } from '../../src/queue/redis-connection.js';
import { certificateError, TlsCertificateError } from '../../src/tls.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-tls-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(text: string, mode = 0o600): Promise<string> {
  const path = join(dir, `f-${++n}`);
  await writeFile(path, text, { mode });
  return path;
}

const load = (env: Record<string, string>) => loadSettings({ env: { VMBRIDGE_IMAP_HOST: 'mail.example.com', ...env }, defaultFile: join(dir, 'absent.yaml') });

async function refused(p: Promise<unknown>, key: string, includes: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key);
    assert.match(err.message, includes);
    return true;
  });
}

describe('redis credentials', () => {
  it('reads redis.passwordFile (one trailing newline dropped) and sends it with the username', async () => {
    const { settings, warnings } = await load({ VMBRIDGE_REDIS_USERNAME: 'vmb', VMBRIDGE_REDIS_PASSWORD_FILE: await file('s3cret \n') });
    assert.deepEqual(warnings, []);
    assert.equal(settings.redis.password, 's3cret ');
    const opts = redisOptions(settings.redis, 'main');
    assert.equal(opts.username, 'vmb');
    assert.equal(opts.password, 's3cret ');
    assert.equal(opts.tls, undefined, 'redis:// has no TLS');
  });

  it('refuses both password and passwordFile, and a password in the URL with either', async () => {
    const pw = await file('x\n');
    await refused(load({ VMBRIDGE_REDIS_PASSWORD: 'a', VMBRIDGE_REDIS_PASSWORD_FILE: pw }), 'redis.passwordFile', /both set/);
    await refused(load({ VMBRIDGE_REDIS_URL: 'redis://:inurl@127.0.0.1:6379', VMBRIDGE_REDIS_PASSWORD_FILE: pw }), 'redis.url', /set only one/);
  });

  it('names the key of a missing or empty password file, not the secret', async () => {
    await refused(load({ VMBRIDGE_REDIS_PASSWORD_FILE: join(dir, 'missing') }), 'redis.passwordFile', /does not exist/);
    await refused(load({ VMBRIDGE_REDIS_PASSWORD_FILE: await file('\n') }), 'redis.passwordFile', /is empty/);
  });

  it('warns about a password sent without TLS off this machine, and a world-readable file', async () => {
    const { warnings } = await load({ VMBRIDGE_REDIS_URL: 'redis://redis.example.com:6379', VMBRIDGE_REDIS_PASSWORD_FILE: await file('pw\n', 0o644) });
    assert.ok(warnings.some((w) => w.includes('use rediss://')), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.startsWith('redis.passwordFile:') && w.includes('readable by every user')), warnings.join('\n'));
  });

  it('rediss:// gets TLS with the CA of redis.tls.caFile', async () => {
    const ca = await file('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const { settings } = await load({ VMBRIDGE_REDIS_URL: 'rediss://127.0.0.1:6380', VMBRIDGE_REDIS_TLS__CA_FILE: ca });
    const opts = redisOptions(settings.redis, 'main');
    assert.equal(opts.tls?.rejectUnauthorized, true);
    assert.ok(Buffer.isBuffer(opts.tls?.ca));
  });
});

describe('tls blocks', () => {
  const ami = (more: Record<string, string>) => ({ VMBRIDGE_ASTERISK_AMI__HOST: 'pbx.example.com', VMBRIDGE_ASTERISK_AMI__USERNAME: 'vmb', VMBRIDGE_ASTERISK_AMI__SECRET: 's', ...more });

  it('checks the CA file of a server that uses TLS, naming its key', async () => {
    await refused(load(ami({ VMBRIDGE_ASTERISK_AMI__SECURE: 'true', VMBRIDGE_ASTERISK_AMI__TLS__CA_FILE: await file('not a certificate\n') })), 'asterisk.ami.tls.caFile', /holds no PEM certificate/);
    await refused(load(ami({ VMBRIDGE_ASTERISK_AMI__SECURE: 'true', VMBRIDGE_ASTERISK_AMI__TLS__CA_FILE: join(dir, 'nope.pem') })), 'asterisk.ami.tls.caFile', /does not exist/);
  });

  it('warns about AMI without TLS to another host, and about verification turned off', async () => {
    const plain = await load(ami({}));
    assert.ok(plain.warnings.some((w) => w.startsWith('asterisk.ami.secure is false')), plain.warnings.join('\n'));
    const unverified = await load(ami({ VMBRIDGE_ASTERISK_AMI__SECURE: 'true', VMBRIDGE_ASTERISK_AMI__TLS__REJECT_UNAUTHORIZED: 'false' }));
    assert.ok(unverified.warnings.some((w) => w.startsWith('asterisk.ami.tls.rejectUnauthorized is false')), unverified.warnings.join('\n'));
    assert.ok(!unverified.warnings.some((w) => w.startsWith('asterisk.ami.secure is false')));
  });
});

describe('certificateError', () => {
  const tls = { rejectUnauthorized: true };
  const nodeError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

  it('says to set caFile for an untrusted chain, and names the file when one is set', () => {
    const e = certificateError(nodeError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), 'IMAP server mail.example.com:993', 'imap.tls', tls);
    assert.ok(e instanceof TlsCertificateError);
    assert.equal(e.reason, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.match(e.message, /^the TLS certificate of IMAP server mail\.example\.com:993 is not signed by a CA this system trusts .*set imap\.tls\.caFile/);
    const withCa = certificateError(nodeError('SELF_SIGNED_CERT_IN_CHAIN', 'x'), 'Redis r:6380', 'redis.tls', { ...tls, caFile: '/etc/ca.pem' });
    assert.match(withCa?.message ?? '', /not signed by the CA in redis\.tls\.caFile \(\/etc\/ca\.pem\)/);
  });

  it('says to set servername for a certificate for another name, found in a cause or as nodemailer\'s originalCode', () => {
    const inner = nodeError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames: Host: a. is not in the cert's altnames: DNS:b");
    const e = certificateError(new Error('login failed', { cause: inner }), 'AMI server a:5039', 'asterisk.ami.tls', tls);
    assert.match(e?.message ?? '', /for another host name \(Host: a\. is not in the cert's altnames: DNS:b\); .*asterisk\.ami\.tls\.servername/);
    const smtp = certificateError(Object.assign(new Error('unable to verify'), { code: 'ESOCKET', originalCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), 'SMTP server s:587', 'alerts.smtp.tls', tls);
    assert.ok(smtp instanceof TlsCertificateError);
  });

  it('is undefined for anything that is not a refused certificate', () => {
    assert.equal(certificateError(nodeError('ECONNREFUSED', 'refused'), 'x', 'imap.tls', tls), undefined);
    assert.equal(certificateError('text', 'x', 'imap.tls', tls), undefined);
  });
});
