/** alerts.smtp: the mail server answers, TLS is set up as asked and the login is accepted. */
import { createAlertTransport, smtpError } from '../../alerts/admin-mail.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

const TIMEOUT_MS = 10_000;

function describeSmtpFailure(err: unknown, secret: string | undefined): string {
  const e = err as { message?: string; code?: string; responseCode?: number };
  let text = e.message ?? String(err);
  if (secret && secret.length >= 3) text = text.split(secret).join('***');
  if (e.code === 'EAUTH') return `login refused: ${text}; see alerts.smtp.auth`;
  if (e.code === 'ESOCKET' || e.code === 'ECONNECTION' || e.code === 'ETIMEDOUT' || e.code === 'EDNS') return `not reachable: ${text}`;
  return text;
}

export const smtpCheck: DoctorCheck = {
  name: 'smtp',
  describes: 'When alerts.smtp is set: the SMTP server answers, TLS works as configured and the login (if any) is accepted. Nothing is sent.',
  async run(ctx): Promise<CheckResult[]> {
    const smtp = ctx.settings.alerts.smtp;
    if (!smtp) return [];
    const section = `SMTP ${smtp.host}:${smtp.port}`;
    const tlsWanted = smtp.secure ? 'TLS' : smtp.requireTLS ? 'STARTTLS (required)' : 'STARTTLS if offered';
    const withAuth = smtp.auth?.pass !== undefined;
    const transport = createAlertTransport(smtp, { connectMs: TIMEOUT_MS, socketMs: TIMEOUT_MS });
    try {
      // verify(): connect, EHLO, TLS as configured, AUTH when credentials are set; no MAIL FROM.
      await transport.verify();
      const auth = withAuth ? `login ${smtp.auth?.user ?? ''} accepted` : 'no login configured';
      return [{ section, status: 'ok', message: `answers; ${tlsWanted}: works; ${auth}`, data: { reachable: true, tls: tlsWanted, auth: withAuth ? 'ok' : 'none' } }];
    } catch (err) {
      return [{ section, status: 'fail', message: describeSmtpFailure(smtpError(err, smtp), smtp.auth?.pass), data: { reachable: false, tls: tlsWanted } }];
    } finally {
      transport.close();
    }
  },
};
