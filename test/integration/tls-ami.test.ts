/**
 * AMI over TLS (manager.conf tlsenable): the AMI test server in its TLS mode with certificates
 * from a private CA made for the test. The client logs in only when the certificate is from the
 * configured CA and for the host it connects to; otherwise the error names the server and the
 * setting to change.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmiClient, AmiConnectionError } from '../../src/mwi/ami-client.js';
import { connectAmiOnce } from '../../src/mwi/ami-session.js';
import { TlsCertificateError } from '../../src/tls.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { testPki, type TestCert, type TestPki } from '../support/tls-ca.js';

describe('AMI over TLS', () => {
  let dir: string;
  let pki: TestPki;
  const servers: AmiTestServer[] = [];
  let good: AmiTestServer;
  let wrongHost: AmiTestServer;
  let otherCa: AmiTestServer;
  const start = async (cert: TestCert): Promise<AmiTestServer> => {
    const s = await startAmiServer({ spoolDir: dir, voicemailBoxes: [], authFailureDelayMs: 20, tls: { cert: cert.cert, key: cert.key } });
    servers.push(s);
    return s;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-tls-ami-'));
    pki = await testPki();
    good = await start(pki.server);
    wrongHost = await start(pki.wrongHost);
    otherCa = await start(pki.otherCaServer);
  });
  after(async () => {
    for (const s of servers) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const login = async (port: number, tls: { caFile?: string; servername?: string }): Promise<AmiClient> =>
    connectAmiOnce({ host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', secure: true, tls: { rejectUnauthorized: true, ...tls } });

  const refusal = async (port: number, tls: { caFile?: string; servername?: string }): Promise<AmiConnectionError> => {
    const err = await login(port, tls).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof AmiConnectionError, `expected a refused connection, got ${String(err)}`);
    assert.ok(err.cause instanceof TlsCertificateError, `the cause is the refused certificate: ${err.message}`);
    return err;
  };

  it('logs in over TLS with the private CA in asterisk.ami.tls.caFile, and the action answers', async () => {
    const client = await login(good.port, { caFile: pki.caFile });
    try {
      const pong = await client.action('Ping');
      assert.equal(pong.reply.get('Ping'), 'Pong');
      assert.ok(good.received.some((a) => a.action === 'Login' && a.get('Username') === 'bridge'), 'the login went through the TLS server');
    } finally {
      await client.close();
    }
  });

  it('refuses the private CA\'s certificate without caFile, naming the server and asterisk.ami.tls.caFile', async () => {
    const before = good.received.length;
    const err = await refusal(good.port, {});
    assert.match(err.message, new RegExp(`AMI server 127\\.0\\.0\\.1:${good.port}`));
    assert.match(err.message, /not signed by a CA this system trusts/);
    assert.match(err.message, /set asterisk\.ami\.tls\.caFile/);
    assert.equal(good.received.length, before, 'no login was sent');
  });

  it('refuses a certificate for another host, naming asterisk.ami.tls.servername', async () => {
    const err = await refusal(wrongHost.port, { caFile: pki.caFile });
    assert.match(err.message, /for another host name/);
    assert.match(err.message, /asterisk\.ami\.tls\.servername/);
    assert.equal(wrongHost.received.length, 0, 'no action reached the server');
  });

  it('accepts that certificate when servername is the name it was issued for', async () => {
    const client = await login(wrongHost.port, { caFile: pki.caFile, servername: 'wrong-host.example.invalid' });
    await client.close();
  });

  it('refuses a certificate from another CA, naming the CA file that did not match', async () => {
    const err = await refusal(otherCa.port, { caFile: pki.caFile });
    assert.match(err.message, /not signed by the CA in asterisk\.ami\.tls\.caFile/);
    assert.ok(err.message.includes(pki.caFile), 'the file is named');
    assert.equal(otherCa.received.length, 0);
  });

  it('a plain client towards the TLS port gets no banner and no login (TLS is not optional)', async () => {
    const client = new AmiClient({ host: '127.0.0.1', port: good.port, username: 'bridge', secret: 'bridge', reconnect: false, connectTimeoutMs: 1_000 });
    await assert.rejects(client.connect(), AmiConnectionError);
    await client.close();
  });
});
