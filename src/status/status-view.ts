/**
 * The status page's figures, made from the directory (which mailboxes there are) and what Redis
 * holds about them: pure, so what the page shows is tested without a browser. A mailbox that has
 * not been reconciled yet is a row too (with no figures): a missing row would hide exactly the
 * mailboxes that are behind.
 */
import type { StaleMark } from '../queue/stale-marks.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import type { StatusSnapshot } from './status-store.js';

export interface StatusBox {
  readonly ref: MailboxRef;
  readonly owner: string;
  readonly imapUser: string;
}

export interface MailboxRow {
  readonly mailbox: string;
  readonly owner: string;
  readonly imapUser: string;
  /** Messages in the store's synced folders and voicemail emails in IMAP at the last reconcile. */
  readonly store?: number;
  readonly imap?: number;
  /** The lamp's counts as the last reconcile left the store. */
  readonly new?: number;
  readonly old?: number;
  readonly urgent?: number;
  readonly reconciledAt?: string;
  readonly reconcileMs?: number;
  readonly applied?: number;
  readonly failedAt?: string;
  readonly error?: string;
  readonly staleSince?: string;
  readonly staleReason?: string;
  /** The fullest quota resource of the mailbox's IMAP account. */
  readonly quotaPercent?: number;
  readonly quotaResource?: string;
  /** ok: reconciled and not failing since; failing: the last attempt failed; stale: the email side is behind; waiting: never reconciled. */
  readonly state: 'ok' | 'failing' | 'stale' | 'waiting';
}

export interface LatencySeries {
  readonly target: string;
  /** Oldest first, for drawing. */
  readonly samples: readonly { readonly at: string; readonly ms: number }[];
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
}

export interface StatusView {
  readonly generatedAt: string;
  readonly totals: { readonly mailboxes: number; readonly ok: number; readonly failing: number; readonly stale: number; readonly waiting: number };
  /** Problems first (stale, failing, waiting), then by mailbox. */
  readonly mailboxes: readonly MailboxRow[];
  readonly latency: readonly LatencySeries[];
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The p-th percentile (0-100) of sorted values, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

const STATE_ORDER: Record<MailboxRow['state'], number> = { stale: 0, failing: 1, waiting: 2, ok: 3 };

export function buildStatusView(boxes: Iterable<StatusBox>, snap: StatusSnapshot, stale: readonly StaleMark[], now: number): StatusView {
  const staleBy = new Map(stale.map((s) => [s.mailbox, s]));
  const rows: MailboxRow[] = [];
  for (const box of boxes) {
    const key = mailboxKey(box.ref);
    const s = snap.boxes.get(key);
    const mark = staleBy.get(key);
    let quota: { percent: number; resource: string } | undefined;
    for (const r of snap.quota.get(box.imapUser)?.readings ?? []) {
      if (r.limit <= 0) continue;
      const percent = Math.round((r.usage / r.limit) * 1000) / 10;
      if (!quota || percent > quota.percent) quota = { percent, resource: r.resource };
    }
    const failing = s?.failedAt !== undefined && (s.reconciledAt === undefined || s.failedAt > s.reconciledAt);
    const state: MailboxRow['state'] = mark ? 'stale' : failing ? 'failing' : s?.reconciledAt === undefined ? 'waiting' : 'ok';
    rows.push({
      mailbox: key,
      owner: box.owner,
      imapUser: box.imapUser,
      state,
      ...(s?.store !== undefined ? { store: s.store } : {}),
      ...(s?.imap !== undefined ? { imap: s.imap } : {}),
      ...(s?.counts ? { new: s.counts.new, old: s.counts.old, urgent: s.counts.urgent } : {}),
      ...(s?.reconciledAt !== undefined ? { reconciledAt: iso(s.reconciledAt) } : {}),
      ...(s?.ms !== undefined ? { reconcileMs: s.ms } : {}),
      ...(s?.applied !== undefined ? { applied: s.applied } : {}),
      ...(failing && s?.failedAt !== undefined ? { failedAt: iso(s.failedAt), error: s.error ?? '' } : {}),
      ...(mark ? { staleSince: mark.since, staleReason: mark.reason } : {}),
      ...(quota ? { quotaPercent: quota.percent, quotaResource: quota.resource } : {}),
    });
  }
  rows.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || (a.mailbox < b.mailbox ? -1 : a.mailbox > b.mailbox ? 1 : 0));

  const byTarget = new Map<string, { at: number; ms: number }[]>();
  for (const sample of snap.latency) {
    const list = byTarget.get(sample.target) ?? [];
    list.push({ at: sample.at, ms: sample.ms });
    byTarget.set(sample.target, list);
  }
  const latency: LatencySeries[] = [...byTarget.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([target, list]) => {
    const oldestFirst = [...list].sort((a, b) => a.at - b.at);
    const sorted = list.map((x) => x.ms).sort((a, b) => a - b);
    return {
      target,
      samples: oldestFirst.map((x) => ({ at: new Date(x.at).toISOString(), ms: x.ms })),
      p50Ms: percentile(sorted, 50),
      p95Ms: percentile(sorted, 95),
      maxMs: sorted[sorted.length - 1] ?? 0,
    };
  });

  const count = (st: MailboxRow['state']): number => rows.filter((r) => r.state === st).length;
  return {
    generatedAt: new Date(now).toISOString(),
    totals: { mailboxes: rows.length, ok: count('ok'), failing: count('failing'), stale: count('stale'), waiting: count('waiting') },
    mailboxes: rows,
    latency,
  };
}
