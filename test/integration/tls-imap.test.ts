/**
 * IMAP over TLS, implicit (imaps) and STARTTLS, against a private Dovecot with ssl = required and
 * a certificate from a private CA made for the test. A certificate that is not from imap.tls.caFile
 * or not for the name connected to is refused, and the error names the server and the setting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { ImapError } from '../../src/errors.js';
import { connectImap } from '../../src/imap/connect.js';
import { TlsCertificateError } from '../../src/tls.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { testPki, type TestPki } from '../support/tls-ca.js';

const ACCOUNT = { user: 'u1000', password: 'pw-u1000' };

describe('IMAP over TLS', () => {
  let pki: TestPki;
  let dovecot: DovecotServer;

  before(async () => {
    pki = await testPki();
    dovecot = await startDovecot({ users: [{ user: ACCOUNT.user, pass: ACCOUNT.password }], tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile } });
  });
  after(async () => {
    await dovecot?.stop();
  });

  const settings = (mode: 'implicit' | 'starttls', tls: Record<string, unknown>): Settings['imap'] =>
    settingsSchema.parse({
      imap: mode === 'implicit'
        ? { host: '127.0.0.1', port: dovecot.tlsPort, secure: true, tls }
        : { host: '127.0.0.1', port: dovecot.port, secure: false, requireTls: true, tls },
    }).imap;

  const refused = async (imap: Settings['imap']): Promise<ImapError> => {
    const err = await connectImap(imap, ACCOUNT).then(
      async (c) => {
        await c.logout();
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof ImapError, `expected a refused login, got ${String(err)}`);
    assert.ok(err.cause instanceof TlsCertificateError, `the certificate is what was refused: ${err.message}`);
    return err;
  };

  for (const mode of ['implicit', 'starttls'] as const) {
    describe(mode === 'implicit' ? 'implicit TLS (secure: true)' : 'STARTTLS (secure: false, requireTls: true)', () => {
      it('logs in with the private CA in imap.tls.caFile, over an encrypted connection', async () => {
        const client = await connectImap(settings(mode, { caFile: pki.caFile }), ACCOUNT);
        try {
          const socket = (client as unknown as { socket?: { encrypted?: boolean; getPeerCertificate?: () => { subject?: { CN?: string } } } }).socket;
          assert.equal(socket?.encrypted, true, 'the session runs over TLS');
          assert.equal(socket?.getPeerCertificate?.().subject?.CN, 'server');
          const status = await client.status('INBOX', { messages: true });
          assert.ok(status !== false && typeof status.messages === 'number', 'STATUS answered over the TLS session');
        } finally {
          await client.logout();
        }
      });

      it('refuses without imap.tls.caFile, naming the server and the setting', async () => {
        const port = mode === 'implicit' ? dovecot.tlsPort : dovecot.port;
        const err = await refused(settings(mode, {}));
        assert.ok(err.message.includes(`IMAP server 127.0.0.1:${port}`), err.message);
        assert.match(err.message, /set imap\.tls\.caFile/);
      });

      it('refuses when the certificate is not for the expected name (imap.tls.servername)', async () => {
        const err = await refused(settings(mode, { caFile: pki.caFile, servername: 'other-name.example.invalid' }));
        assert.match(err.message, /for another host name.*imap\.tls\.servername/);
      });

      it('refuses a server whose certificate is not from the CA in imap.tls.caFile', async () => {
        const err = await refused(settings(mode, { caFile: pki.otherCaFile }));
        assert.ok(err.message.includes(`not signed by the CA in imap.tls.caFile (${pki.otherCaFile})`), err.message);
      });
    });
  }
});
