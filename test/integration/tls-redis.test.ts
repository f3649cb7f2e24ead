/**
 * Redis over TLS (rediss://) and with an ACL password from a file, against private redis-server
 * instances with --tls-port and certificates from a private CA made for the test.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/load-settings.js';
import type { Settings } from '../../src/config/schema.js';
import { createRedis, describeRedisError } from '../../src/queue/redis-connection.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { testPki, type TestCert, type TestPki } from '../support/tls-ca.js';

const PASSWORD = 'redis-pw-7c41d9';

describe('Redis over TLS, with the password from a file', () => {
  let dir: string;
  let pki: TestPki;
  const servers: RedisServer[] = [];
  let good: RedisServer;
  let wrongHost: RedisServer;
  let otherCa: RedisServer;
  const start = async (cert: TestCert): Promise<RedisServer> => {
    const s = await startRedis({ tls: { certFile: cert.certFile, keyFile: cert.keyFile, caFile: pki.caFile }, users: [{ name: 'vmb', pass: PASSWORD }] });
    servers.push(s);
    return s;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-tls-redis-'));
    pki = await testPki();
    good = await start(pki.server);
    wrongHost = await start(pki.wrongHost);
    otherCa = await start(pki.otherCaServer);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Settings as the loader gives them, from the environment only. */
  const settings = async (env: Record<string, string>): Promise<Settings> => {
    const passwordFile = join(dir, 'redis-password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const loaded = await loadSettings({
      env: { VMBRIDGE_IMAP_HOST: '127.0.0.1', VMBRIDGE_REDIS_USERNAME: 'vmb', VMBRIDGE_REDIS_PASSWORD_FILE: passwordFile, ...env },
      defaultFile: join(dir, 'absent.yaml'),
    });
    return loaded.settings;
  };

  /** PING over a fresh connection: 'PONG', or the logged description of the failure. */
  const ping = async (s: Settings): Promise<{ pong?: string; user?: string; error?: string }> => {
    const redis = createRedis(s.redis, 'test', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    let first: Error | undefined;
    redis.on('error', (err: Error) => {
      first ??= err;
    });
    try {
      await redis.connect();
      const pong = await redis.ping();
      const me = String(await redis.call('ACL', 'WHOAMI'));
      return { pong, user: me };
    } catch (err) {
      return { error: describeRedisError(first ?? (err as Error), s.redis) };
    } finally {
      redis.disconnect();
    }
  };

  it('connects with rediss://, the private CA in redis.tls.caFile and the ACL password from redis.passwordFile', async () => {
    const s = await settings({ VMBRIDGE_REDIS_URL: good.tlsUrl!, VMBRIDGE_REDIS_TLS__CA_FILE: pki.caFile });
    assert.equal(s.redis.password, PASSWORD, 'the file was read, its newline dropped');
    const got = await ping(s);
    assert.deepEqual(got, { pong: 'PONG', user: 'vmb' });
  });

  it('refuses the private CA\'s certificate without redis.tls.caFile, and says to set it', async () => {
    const got = await ping(await settings({ VMBRIDGE_REDIS_URL: good.tlsUrl! }));
    assert.equal(got.pong, undefined);
    assert.match(got.error ?? '', new RegExp(`Redis 127\\.0\\.0\\.1:${good.tlsPort}`));
    assert.match(got.error ?? '', /set redis\.tls\.caFile/);
  });

  it('refuses a certificate for another host, naming redis.tls.servername', async () => {
    const got = await ping(await settings({ VMBRIDGE_REDIS_URL: wrongHost.tlsUrl!, VMBRIDGE_REDIS_TLS__CA_FILE: pki.caFile }));
    assert.equal(got.pong, undefined);
    assert.match(got.error ?? '', /for another host name.*redis\.tls\.servername/);
  });

  it('refuses a certificate from another CA, naming the CA file', async () => {
    const got = await ping(await settings({ VMBRIDGE_REDIS_URL: otherCa.tlsUrl!, VMBRIDGE_REDIS_TLS__CA_FILE: pki.caFile }));
    assert.equal(got.pong, undefined);
    assert.ok(got.error?.includes(`not signed by the CA in redis.tls.caFile (${pki.caFile})`), got.error);
  });

  it('a wrong password from the file is refused by Redis (the password is really sent)', async () => {
    const s = await settings({ VMBRIDGE_REDIS_URL: good.tlsUrl!, VMBRIDGE_REDIS_TLS__CA_FILE: pki.caFile });
    const got = await ping({ ...s, redis: { ...s.redis, password: 'not-the-password' } });
    assert.match(got.error ?? '', /WRONGPASS|invalid username-password/i);
  });

  it('a CA file that holds no certificate is refused at start, naming redis.tls.caFile', async () => {
    const notPem = join(dir, 'not-a-ca.pem');
    await writeFile(notPem, 'hello\n');
    await assert.rejects(settings({ VMBRIDGE_REDIS_URL: good.tlsUrl!, VMBRIDGE_REDIS_TLS__CA_FILE: notPem }), (err: Error & { key?: string }) => {
      assert.equal(err.key, 'redis.tls.caFile');
      assert.match(err.message, /holds no PEM certificate/);
      return true;
    });
  });
});
