/**
 * How long, at worst, an action in a mail client (read, filed, deleted) takes to reach the lamps,
 * for the configuration at hand, and why: Dovecot push covers every account at once; IDLE covers
 * as many accounts as imap.idle.maxAccounts allows (chosen by need); the others wait for the
 * sweep. Worked out from the settings, voicemail.conf and the push record in Redis; nothing is
 * sent to a server.
 */
import { accountKey } from '../../imap/account.js';
import type { Settings } from '../../config/schema.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';
import { readPushSeen } from './push.js';

/** Dovecot's IDLE notice (about 0.5 s measured) and push, plus one reconcile and the lamp. */
const EVENT_SECONDS = 1;

export interface DelayFacts {
  readonly server: string;
  readonly accounts: number;
  readonly idleMax: number;
  readonly pushEnabled: boolean;
  /** Seconds since the newest POST from Dovecot; undefined: none seen (or not readable). */
  readonly pushAgeSeconds: number | undefined;
  readonly sweepSeconds: number;
  /** imap.idle.notify; default true. */
  readonly idleNotify?: boolean;
}

/** Pure: the lines doctor prints, the last one with the worst case in its data. */
export function lampDelayResults(f: DelayFacts): CheckResult[] {
  const section = `email action to lamp (IMAP ${f.server})`;
  const out: CheckResult[] = [];
  if (f.accounts === 0) return [{ section, status: 'info', message: 'no mailbox with an IMAP account in voicemail.conf: nothing to watch' }];
  const pushArrives = f.pushEnabled && f.pushAgeSeconds !== undefined;
  if (pushArrives) {
    out.push({ section, status: 'ok', message: `Dovecot push: every one of ${f.accounts} accounts, about ${EVENT_SECONDS} s (the last POST arrived ${f.pushAgeSeconds} s ago)` });
    out.push({ section, status: 'ok', message: `worst case about ${EVENT_SECONDS} s, for every account (push)`, data: { worstSeconds: EVENT_SECONDS, by: 'push', accounts: f.accounts } });
    return out;
  }
  if (f.pushEnabled) out.push({ section, status: 'warn', message: 'Dovecot push is on but no POST has arrived yet: until one does, changes are heard as without push (below)' });
  const watched = Math.min(f.accounts, f.idleMax);
  const rest = f.accounts - watched;
  if (watched > 0) {
    const folders = f.idleNotify === false
      ? '; changes inside Work, Family and Friends wait for the sweep (imap.idle.notify is false)'
      : '; every voicemail folder where the server has IMAP NOTIFY, else the inbox folder only (Work, Family and Friends then wait for the sweep)';
    out.push({ section, status: 'ok', message: (rest === 0
      ? `IDLE: all ${f.accounts} accounts, about ${EVENT_SECONDS} s`
      : `IDLE: ${watched} of ${f.accounts} accounts (imap.idle.maxAccounts), about ${EVENT_SECONDS} s; chosen by need: accounts with unread voicemail, then those most recently active`) + folders });
  }
  if (rest === 0) {
    out.push({ section, status: 'ok', message: `worst case about ${EVENT_SECONDS} s, for every account (IDLE)`, data: { worstSeconds: EVENT_SECONDS, by: 'idle', accounts: f.accounts } });
    return out;
  }
  if (f.sweepSeconds === 0) {
    out.push({ section, status: 'warn', message: `the other ${rest} accounts: not heard at all until something else makes their mailbox reconcile (spool.sweepSeconds is 0); turn on Dovecot push (docs/push.md) or set spool.sweepSeconds`, data: { worstSeconds: null, by: 'none', accounts: rest } });
    return out;
  }
  out.push({
    section,
    status: 'warn',
    message: `the other ${rest} accounts wait for the sweep: up to ${f.sweepSeconds} s (spool.sweepSeconds) plus the sweep's own time over ${f.accounts} mailboxes; Dovecot push (docs/push.md) would make it about ${EVENT_SECONDS} s for all`,
    data: { worstSeconds: f.sweepSeconds, by: 'sweep', accounts: rest },
  });
  return out;
}

/** Seconds since the newest POST from Dovecot; undefined when none was seen or Redis is not readable. */
async function newestPushAge(settings: Settings): Promise<number | undefined> {
  const seen = await readPushSeen(settings).catch(() => []);
  const newest = Math.max(...seen.map((s) => Date.parse(s.at)).filter(Number.isFinite));
  return Number.isFinite(newest) ? Math.max(0, Math.round((Date.now() - newest) / 1000)) : undefined;
}

export const delayCheck: DoctorCheck = {
  name: 'delay',
  describes: 'The worst-case delay from an action in a mail client to the lamps, and why (Dovecot push, IDLE for imap.idle.maxAccounts accounts, or the sweep period), from the settings and voicemail.conf',
  async run(ctx): Promise<CheckResult[]> {
    const read = await ctx.directory();
    const server = `${ctx.settings.imap.host}:${ctx.settings.imap.port}`;
    if (!read.ok) return [{ section: `email action to lamp (IMAP ${server})`, status: 'info', message: `not worked out: voicemail.conf is not readable (${read.error})` }];
    const accounts = new Set([...read.directory.boxes.values()].map((b) => accountKey(b.account))).size;
    return lampDelayResults({
      server,
      accounts,
      idleMax: ctx.settings.imap.idle.maxAccounts,
      pushEnabled: ctx.settings.http.push.enabled,
      pushAgeSeconds: ctx.settings.http.push.enabled ? await newestPushAge(ctx.settings) : undefined,
      sweepSeconds: ctx.settings.spool.sweepSeconds,
      idleNotify: ctx.settings.imap.idle.notify,
    });
  },
};
