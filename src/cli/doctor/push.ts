/**
 * http.push: the running vmbridge takes Dovecot's POSTs with this settings file's token. The
 * doctor sends what the Dovecot script would send for a user no voicemail box has, which the
 * service answers and otherwise ignores; Dovecot itself is not touched.
 */
import { isIP } from 'node:net';
import { DOVECOT_PUSH_PATH, PROBE_USER } from '../../http/dovecot-push.js';
import type { Settings } from '../../config/schema.js';
import { listPushSeen, type PushSeen } from '../../queue/push-seen.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';
import { oneShotRedis, withTimeout } from './redis.js';

const TIMEOUT_MS = 5_000;

/** Where Dovecot should POST: the listen address, or loopback for a wildcard one. */
export function pushUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const shown = isIP(reachable) === 6 ? `[${reachable}]` : reachable;
  return `http://${shown}:${port}${DOVECOT_PUSH_PATH}`;
}

/** Pure: how long ago, in words. */
export function ago(seconds: number): string {
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)} h ago`;
  return `${Math.round(seconds / 86_400)} days ago`;
}

/** Pure: whether push is arriving, per sender, from the record the service keeps in Redis. */
export function arrivalResults(seen: readonly PushSeen[], now: number): CheckResult[] {
  const section = 'Dovecot push';
  if (seen.length === 0) {
    return [{ section, status: 'warn', message: 'no POST from Dovecot seen by vmbridge yet: check vmbridge_push_url and the push_notification plugin in dovecot.conf (docs/push.md); until then changes wait for IDLE or the sweep', data: { arriving: false } }];
  }
  return seen.map((s) => {
    const ageSeconds = Math.max(0, Math.round((now - Date.parse(s.at)) / 1000));
    return { section, status: 'ok' as const, message: `POSTs arrive from ${s.sender}: the last ${ago(ageSeconds)} (${s.at})`, data: { arriving: true, sender: s.sender, lastAt: s.at, ageSeconds } };
  });
}

/** The push record the service keeps in Redis; rejects when Redis is not readable. */
export async function readPushSeen(settings: Settings): Promise<PushSeen[]> {
  const redis = oneShotRedis(settings);
  redis.on('error', () => undefined);
  try {
    await withTimeout(redis.connect(), 6_000, 'connect');
    return await withTimeout(listPushSeen(redis, settings.redis.prefix), TIMEOUT_MS, 'push record');
  } finally {
    redis.disconnect();
  }
}

async function readArrivals(settings: Settings): Promise<CheckResult[]> {
  try {
    return arrivalResults(await readPushSeen(settings), Date.now());
  } catch (err) {
    return [{ section: 'Dovecot push', status: 'info', message: `whether POSTs arrive is not known: Redis is not readable (${err instanceof Error ? err.message : String(err)})` }];
  }
}

export const pushCheck: DoctorCheck = {
  name: 'push',
  describes: 'When http.push.enabled: the running vmbridge answers POST /dovecot-push with this token (a probe for a user with no voicemail box; nothing is reconciled), the vmbridge_push_url Dovecot needs, and whether Dovecot\'s POSTs arrive (the last one seen, per sending server)',
  async run(ctx): Promise<CheckResult[]> {
    const answered = await probe(ctx.settings);
    if (!ctx.settings.http.push.enabled) return answered;
    return [...answered, ...(await readArrivals(ctx.settings))];
  },
};

async function probe(settings: Settings): Promise<CheckResult[]> {
  const { http } = settings;
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
}
