/**
 * Alert mail over TLS, implicit (secure: true, as port 465) and STARTTLS (requireTLS), to the SMTP
 * sink with a certificate from a private CA made for the test: sent with alerts.smtp.tls.caFile,
 * refused without it, for another name, or from another CA, with an error naming the setting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAlertTransport, sendAlertMail, type AlertSettings } from '../../src/alerts/admin-mail.js';
import { settingsSchema } from '../../src/config/schema.js';
import { TlsCertificateError } from '../../src/tls.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { testPki, type TestPki } from '../support/tls-ca.js';

const MAIL = { subject: 'TLS test', text: 'body', kind: 'quota' as const };

describe('alert mail over TLS', () => {
  let pki: TestPki;
  const sinks: Partial<Record<'implicit' | 'starttls', SmtpSink>> = {};

  before(async () => {
    pki = await testPki();
    for (const mode of ['implicit', 'starttls'] as const) {
      sinks[mode] = await startSmtpSink({ tls: { mode, cert: pki.server.cert, key: pki.server.key }, auth: { user: 'alerts', pass: 'smtp-pw-51e0' } });
    }
  });
  after(async () => {
    for (const s of Object.values(sinks)) await s.close();
  });

  const alerts = (mode: 'implicit' | 'starttls', tls: Record<string, unknown>): AlertSettings =>
    settingsSchema.parse({
      imap: { host: '127.0.0.1' },
      alerts: {
        to: ['admin@example.invalid'],
        smtp: { host: '127.0.0.1', port: sinks[mode]!.port, secure: mode === 'implicit', requireTLS: true, auth: { user: 'alerts', pass: 'smtp-pw-51e0' }, tls },
      },
    }).alerts;

  const send = async (settings: AlertSettings): Promise<unknown> => {
    const transport = createAlertTransport(settings.smtp!, { connectMs: 5_000, socketMs: 5_000 });
    try {
      return await sendAlertMail(transport, settings, MAIL);
    } catch (err) {
      return err;
    } finally {
      transport.close();
    }
  };

  for (const mode of ['implicit', 'starttls'] as const) {
    describe(mode === 'implicit' ? 'implicit TLS (secure: true)' : 'STARTTLS (requireTLS: true)', () => {
      it('sends with the private CA in alerts.smtp.tls.caFile, logged in', async () => {
        const before = sinks[mode]!.received.length;
        const id = await send(alerts(mode, { caFile: pki.caFile }));
        assert.equal(typeof id, 'string', `sent: ${String(id)}`);
        assert.equal(sinks[mode]!.received.length, before + 1);
        assert.equal(sinks[mode]!.received.at(-1)?.mail.subject, 'TLS test');
      });

      const refused = async (tls: Record<string, unknown>): Promise<TlsCertificateError> => {
        const before = sinks[mode]!.received.length;
        const err = await send(alerts(mode, tls));
        assert.ok(err instanceof TlsCertificateError, `expected a refused certificate, got ${String(err)}`);
        assert.equal(sinks[mode]!.received.length, before, 'nothing was sent');
        return err;
      };

      it('refuses without alerts.smtp.tls.caFile, naming the server and the setting', async () => {
        const err = await refused({});
        assert.ok(err.message.includes(`SMTP server 127.0.0.1:${sinks[mode]!.port}`), err.message);
        assert.match(err.message, /set alerts\.smtp\.tls\.caFile/);
      });

      it('refuses a certificate that is not for the expected name', async () => {
        const err = await refused({ caFile: pki.caFile, servername: 'other-name.example.invalid' });
        assert.match(err.message, /for another host name.*alerts\.smtp\.tls\.servername/);
      });

      it('refuses a certificate from another CA than alerts.smtp.tls.caFile', async () => {
        const err = await refused({ caFile: pki.otherCaFile });
        assert.ok(err.message.includes('not signed by the CA in alerts.smtp.tls.caFile'), err.message);
      });
    });
  }
});
