/**
 * http.push: the running vmbridge takes Dovecot's POSTs with this settings file's token. The
 * doctor sends what the Dovecot script would send for a user no voicemail box has, which the
 * service answers and otherwise ignores; Dovecot itself is not touched.
 */
import { isIP } from 'node:net';
import { DOVECOT_PUSH_PATH } from '../../http/dovecot-push.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

const TIMEOUT_MS = 5_000;
/** No IMAP account is called this (it has characters voicemail.conf's imapuser cannot hold). */
const PROBE_USER = 'vmbridge doctor probe';

/** Where Dovecot should POST: the listen address, or loopback for a wildcard one. */
export function pushUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const shown = isIP(reachable) === 6 ? `[${reachable}]` : reachable;
  return `http://${shown}:${port}${DOVECOT_PUSH_PATH}`;
}

export const pushCheck: DoctorCheck = {
  name: 'push',
  describes: 'When http.push.enabled: the running vmbridge answers POST /dovecot-push with this token (a probe for a user with no voicemail box; nothing is reconciled), and the vmbridge_push_url Dovecot needs',
  async run(ctx): Promise<CheckResult[]> {
    const { http } = ctx.settings;
    const section = 'Dovecot push';
    if (!http.push.enabled) return [{ section, status: 'info', message: 'off (http.push.enabled: false): mail-client changes are heard by IDLE and the sweep; see docs/push.md', data: { enabled: false } }];
    const url = pushUrl(http.host, http.port);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (http.push.token !== undefined) headers.authorization = `Bearer ${http.push.token}`;
    let status: number;
    try {
      const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ user: PROBE_USER, events: [] }), signal: AbortSignal.timeout(TIMEOUT_MS) });
      status = res.status;
      await res.body?.cancel();
    } catch (err) {
      const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      return [{ section, status: 'warn', message: `${url}: no answer (${why}): is vmbridge running with these settings? Until it is, Dovecot's POSTs fail and it holds back for 30 s after each failure`, data: { enabled: true, url, answered: false } }];
    }
    const token = http.push.token === undefined ? 'no token' : 'its token';
    if (status === 204) return [{ section, status: 'ok', message: `${url} takes POSTs with ${token}; in dovecot.conf: vmbridge_push_url = ${url}${http.push.token === undefined ? '' : ' and vmbridge_push_token (quoted)'}`, data: { enabled: true, url, answered: true, status } }];
    if (status === 401) return [{ section, status: 'fail', message: `${url}: the running vmbridge refuses this token (401): its http.push.token differs from this settings file's`, data: { enabled: true, url, answered: true, status } }];
    if (status === 404 || status === 405) return [{ section, status: 'fail', message: `${url}: the vmbridge answering there does not take push (${status}): is http.push.enabled true in the settings it runs with?`, data: { enabled: true, url, answered: true, status } }];
    return [{ section, status: 'fail', message: `${url}: unexpected answer ${status}`, data: { enabled: true, url, answered: true, status } }];
  },
};
