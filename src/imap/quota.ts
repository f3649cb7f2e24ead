/**
 * Quota on the IMAP side: reading it (GETQUOTAROOT, RFC 2087/9208) and recognising an APPEND the
 * server refused because the mailbox is full.
 *
 * Servers word a full mailbox differently: RFC 5530's `NO [OVERQUOTA]` (Dovecot, Cyrus, Gmail),
 * or a bare NO whose text says so ("Over quota", "Quota exceeded", "Mailbox is full", "mailbox
 * size limit exceeded"). Both count; any other NO is a different problem and is not retried as a
 * quota block.
 */
import type { ImapFlow, QuotaResource } from 'imapflow';
import type { ServerCapabilities } from './capabilities.js';

export type QuotaUnit = 'bytes' | 'messages' | 'units';

/** One resource of the quota root that holds a folder. */
export interface QuotaReading {
  /** The quota root's name as the server gave it ("User quota", "user.alice", "" when unnamed). */
  readonly root: string;
  /** Upper case, as on the wire: STORAGE, MESSAGE, or what else the server reports. */
  readonly resource: string;
  /** STORAGE in bytes (the wire's KiB times 1024), MESSAGE in messages. */
  readonly usage: number;
  readonly limit: number;
  readonly unit: QuotaUnit;
}

function unitOf(resource: string): QuotaUnit {
  if (resource === 'STORAGE') return 'bytes';
  if (resource === 'MESSAGE') return 'messages';
  return 'units';
}

function isResource(v: unknown): v is QuotaResource {
  return typeof v === 'object' && v !== null;
}

/**
 * Every resource with a usable usage and a positive limit for the quota root of `path`. Undefined
 * when the server has no QUOTA, or answered nothing usable (no quota root, a NO); then vmbridge
 * only learns about a full mailbox from a refused APPEND.
 */
export async function readQuota(client: ImapFlow, caps: ServerCapabilities, path: string): Promise<QuotaReading[] | undefined> {
  const hasQuota = caps.quota || [...client.capabilities.keys()].some((c) => c.startsWith('QUOTA=RES-'));
  if (!hasQuota) return undefined;
  let answer = await client.getQuota(path);
  // A voicemail folder not created yet has no quota root to report; the user's INBOX always has.
  if (!answer && path !== 'INBOX') answer = await client.getQuota('INBOX');
  if (!answer) return undefined;
  const root = answer.quotaRoot ?? '';
  const readings: QuotaReading[] = [];
  for (const [key, value] of Object.entries(answer)) {
    if (key === 'path' || key === 'quotaRoot' || !isResource(value)) continue;
    if (value.usage === undefined || value.limit === undefined || !(value.limit > 0)) continue;
    const resource = key.toUpperCase();
    readings.push({ root, resource, usage: value.usage, limit: value.limit, unit: unitOf(resource) });
  }
  return readings.sort((a, b) => a.resource.localeCompare(b.resource));
}

const QUOTA_TEXT = /\bover ?quota\b|\bquota\b.*\b(exceed|reach|full)|\bexceed\w*\b.*\bquota\b|\bmailbox (is )?full\b|\bmailbox size limit\b|\bstorage (quota|limit) (exceeded|reached)\b|\binsufficient (storage|disk quota)\b/i;

interface ImapFailure {
  readonly serverResponseCode?: unknown;
  readonly responseText?: unknown;
  readonly responseStatus?: unknown;
  readonly cause?: unknown;
}

/**
 * True when `err` (or an error it wraps as `cause`) is an IMAP NO that means "no room": the
 * OVERQUOTA response code, or quota wording in the text of a NO.
 */
export function isOverQuotaError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const f = e as ImapFailure;
    const code = typeof f.serverResponseCode === 'string' ? f.serverResponseCode.toUpperCase() : '';
    if (code === 'OVERQUOTA') return true;
    const status = typeof f.responseStatus === 'string' ? f.responseStatus.toUpperCase() : '';
    if (status === 'NO' && typeof f.responseText === 'string' && QUOTA_TEXT.test(f.responseText)) return true;
    e = f.cause;
  }
  return false;
}

/** The server's words for a refusal, for logs and the alert mail (no secrets in them). */
export function refusalText(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const f = e as ImapFailure;
    if (typeof f.responseText === 'string' && f.responseText !== '') {
      const code = typeof f.serverResponseCode === 'string' && f.serverResponseCode !== '' ? `[${f.serverResponseCode}] ` : '';
      // Dovecot appends its timing ("(0.001 + 0.000 secs)."): noise for a person reading it.
      const text = f.responseText.replace(/\s*\(\d+\.\d+(?: \+ \d+\.\d+)* secs\)\.?$/, '');
      // responseText already starts with the code on some servers: do not repeat it.
      return `NO ${text.startsWith('[') ? '' : code}${text}`.slice(0, 300);
    }
    e = f.cause;
  }
  return err instanceof Error ? err.message.slice(0, 300) : 'refused';
}
