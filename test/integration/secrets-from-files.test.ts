/**
 * Every secret from a file, and none in the log: the service runs a whole cycle (a voicemail
 * becomes an email, a quota alert is mailed, the lamps are set over AMI and SIP) with settings
 * loaded from a settings file whose passwords, secrets and tokens are all `...File` settings:
 * Redis (rediss://, ACL user), the Asterisk's AMI (over TLS), the AMI and SIP MWI targets, the
 * SMTP login (STARTTLS) and the push token. Then every line logged, at debug level, is searched
 * for each secret it used, and for the IMAP password from voicemail.conf.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/load-settings.js';
import { AmiClient, type AmiEvent } from '../../src/mwi/ami-client.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startSipPeer, type SipPeer } from '../support/sip-peer.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { testPki, type TestPki } from '../support/tls-ca.js';
import { waitFor } from '../support/wait.js';

const REF: MailboxRef = { context: 'default', mailbox: '1000' };
const WAIT = { timeoutMs: 45_000, intervalMs: 100 };
/** Distinct, and long enough that a match in the log cannot be chance. */
const SECRETS = {
  redis: 'redis-secret-3f9a61c2e8',
  ami: 'ami-secret-b7d24e0a95',
  smtp: 'smtp-secret-c18f5d7b42',
  push: 'push-token-e2a9c4f716',
  status: 'status-password-8d0c3b5a71',
} as const;

describe('secrets from files, none in the log', { timeout: 180_000 }, () => {
  let pki: TestPki;
  let h: Harness;
  let redis: RedisServer;
  let owner: AmiTestServer;
  let sink: SmtpSink;
  let peer: SipPeer;
  let listener: AmiClient;
  let service: Service | undefined;
  const ownerEvents: AmiEvent[] = [];
  const used: string[] = [];

  before(async () => {
    pki = await testPki();
    h = await startHarness({ boxes: [{ mailbox: '1000', quotaRule: '*:messages=2' }], logLevel: 'debug' });
    redis = await startRedis({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile }, users: [{ name: 'vmb', pass: SECRETS.redis }] });
    owner = await startAmiServer({ spoolDir: h.spoolDir, profile: 'voicemail', users: [{ username: 'bridge', secret: SECRETS.ami }], tls: { cert: pki.server.cert, key: pki.server.key } });
    sink = await startSmtpSink({ tls: { mode: 'starttls', cert: pki.server.cert, key: pki.server.key }, auth: { user: 'alerts', pass: SECRETS.smtp } });
    peer = await startSipPeer({ username: 'vmbridge' });
    used.push(...Object.values(SECRETS), peer.password, h.account(REF).pass);

    const file = async (name: string, secret: string): Promise<string> => {
      const path = join(h.dir, name);
      await writeFile(path, `${secret}\n`, { mode: 0o600 });
      return path;
    };
    const amiFile = await file('ami-secret', SECRETS.ami);
    const tls = { caFile: pki.caFile };
    const base = h.settings;
    const settingsFile = join(h.dir, 'vmbridge.yaml');
    // JSON is YAML: the file the loader reads, with every secret as a file.
    await writeFile(settingsFile, JSON.stringify({
      spool: base.spool,
      redis: { url: redis.tlsUrl, prefix: base.redis.prefix, username: 'vmb', passwordFile: await file('redis-password', SECRETS.redis), tls },
      imap: { host: base.imap.host, port: base.imap.port, secure: false, requireTls: false },
      email: base.email,
      log: { level: 'debug' },
      asterisk: { ami: { host: '127.0.0.1', port: owner.port, username: 'bridge', secretFile: amiFile, secure: true, tls } },
      http: { host: '127.0.0.1', port: await freePort(), push: { enabled: true, tokenFile: await file('push-token', SECRETS.push) }, status: { enabled: true, passwordFile: await file('status-password', SECRETS.status) } },
      mwi: {
        targets: [
          { name: 'owner', kind: 'ami-refresh', host: '127.0.0.1', port: owner.port, username: 'bridge', secretFile: amiFile, secure: true, tls },
          { name: 'proxy', kind: 'sip-notify', host: peer.host, port: peer.port, toUri: 'sip:{mailbox}@vmbridge.test', fromUri: 'sip:vmbridge@vmbridge.test', username: peer.username, passwordFile: await file('sip-password', peer.password) },
        ],
        retrySeconds: 1,
        retryMaxSeconds: 2,
      },
      alerts: {
        to: ['admin@example.invalid'],
        smtp: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: true, auth: { user: 'alerts', passFile: await file('smtp-password', SECRETS.smtp) }, tls },
        quotaThresholds: [50],
        quotaCheckSeconds: 0,
      },
    }));
    const loaded = await loadSettings({ file: settingsFile, env: {} });
    assert.deepEqual(loaded.warnings, [], 'secrets in files with mode 600 give no warning');
    assert.equal(loaded.settings.redis.password, SECRETS.redis, 'the loader read the files');

    listener = new AmiClient({ host: '127.0.0.1', port: owner.port, username: 'bridge', secret: SECRETS.ami, reconnect: false, tls: { rejectUnauthorized: true, caFile: pki.caFile } });
    listener.on('event', (e) => {
      if (e.event === 'MessageWaiting') ownerEvents.push(e);
    });
    await listener.connect();
    service = await startService(loaded.settings, h.log);
    // The status page is used with its password, so the log scan covers that path too.
    const page = await fetch(`http://127.0.0.1:${loaded.settings.http.port}/status.json`, { headers: { authorization: `Basic ${Buffer.from(`admin:${SECRETS.status}`).toString('base64')}` } });
    assert.equal(page.status, 200);
  });
  after(async () => {
    await service?.close().catch(() => undefined);
    await listener?.close();
    await peer?.stop();
    await sink?.close();
    await owner?.close();
    await redis?.stop();
    await h?.stop();
  });

  it('runs voicemail -> email -> quota alert -> MWI (AMI over TLS, SIP with Digest) with every secret from a file', async () => {
    await leaveVoicemail(h.spoolDir, REF);
    const mc = await h.mail(REF);
    await waitFor('the voicemail email in INBOX', async () => (await mc.list(['INBOX'])).length === 1, WAIT);
    await waitFor('the owner Asterisk publishing 1 new', () => ownerEvents.some((e) => e.get('Mailbox') === '1000@default' && e.get('New') === '1'), WAIT);
    await waitFor('a NOTIFY with 1 new, answered 200 after Digest', async () =>
      (await peer.received()).some((r) => r.answered === 200 && r.requestLine.startsWith('NOTIFY sip:1000@') && /^Voice-Message: 1\/0/m.test(r.body)), WAIT);
    await waitFor('the quota alert mail, sent with the SMTP login', () => sink.received.some((m) => (m.mail.subject ?? '').includes('1000@default')), WAIT);
    // The sink has the mail a moment before the worker, told by the server, logs it as sent.
    await waitFor('the "alert mailed" log line', () => h.logLines.some((line) => line.includes('"msg":"alert mailed"')), WAIT);
  });

  it('logs none of the secrets it used', () => {
    // The lines of the whole cycle are there to be searched.
    for (const msg of ['AMI connected', 'MWI target connected', 'email appended', 'MWI published', 'alert mailed']) {
      assert.ok(h.logLines.some((line) => line.includes(`"msg":"${msg}"`)), `a "${msg}" line was logged`);
    }
    for (const secret of used) {
      const leaks = h.logLines.filter((line) => line.includes(secret));
      assert.deepEqual(leaks, [], `a secret of ${secret.length} characters appears in the log`);
    }
  });
});
