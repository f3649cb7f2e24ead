/**
 * What the status page shows of each mailbox, kept in Redis so that every worker process writes
 * to, and the page of any process reads, the same record:
 *
 *   <prefix>:status:box       hash mailbox → the last reconcile: when, how long, what it saw
 *                             (store and IMAP), the lamp's counts, and the last failure
 *   <prefix>:status:heard     hash mailbox → when the change behind the desired MWI counts was
 *                             first heard (the reconcile job's creation)
 *   <prefix>:status:latency   list, newest first, at most LATENCY_SAMPLES: change heard → lamp
 *                             confirmed, per target
 *   <prefix>:status:quota     hash IMAP user → the last quota reading
 *
 * Everything read back is data from Redis: parsed and checked, and a record that does not parse
 * is shown as unknown rather than breaking the page.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { mailboxKey, type MailboxRef } from '../spool/types.js';

/** Change-to-lamp samples kept (all targets together): enough for a chart, bounded in Redis. */
export const LATENCY_SAMPLES = 500;

const countsSchema = z.strictObject({ new: z.number().int().nonnegative(), old: z.number().int().nonnegative(), urgent: z.number().int().nonnegative() });

const boxSchema = z.strictObject({
  /** Epoch ms of the last finished reconcile. */
  reconciledAt: z.number().optional(),
  ms: z.number().nonnegative().optional(),
  /** Messages in the synced folders of the store, and voicemail emails in IMAP, as that reconcile found them. */
  store: z.number().int().nonnegative().optional(),
  imap: z.number().int().nonnegative().optional(),
  /** Changes it applied. */
  applied: z.number().int().nonnegative().optional(),
  counts: countsSchema.optional(),
  /** The last failed attempt, kept until a reconcile finishes. */
  failedAt: z.number().optional(),
  error: z.string().optional(),
});
export type BoxStatus = z.infer<typeof boxSchema>;

const latencySchema = z.strictObject({ at: z.number(), target: z.string(), ms: z.number().nonnegative() });
export type LatencySample = z.infer<typeof latencySchema>;

const quotaSchema = z.strictObject({
  at: z.number(),
  readings: z.array(z.strictObject({ resource: z.string(), usage: z.number().nonnegative(), limit: z.number().nonnegative() })),
});
export type QuotaStatus = z.infer<typeof quotaSchema>;

export interface ReconciledStatus {
  readonly at: number;
  readonly ms: number;
  readonly store: number;
  readonly imap: number;
  readonly applied: number;
  readonly counts?: { readonly new: number; readonly old: number; readonly urgent: number } | undefined;
}

export interface StatusSnapshot {
  readonly boxes: ReadonlyMap<string, BoxStatus>;
  readonly quota: ReadonlyMap<string, QuotaStatus>;
  /** Newest first. */
  readonly latency: readonly LatencySample[];
}

function parsed<T>(schema: z.ZodType<T>, raw: string | null | undefined): T | undefined {
  if (raw === null || raw === undefined) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** An error's first line, bounded: it is shown on a page, not kept as a log. */
function shortError(message: string): string {
  return (message.split(/\r?\n/, 1)[0] ?? '').slice(0, 300);
}

export class StatusStore {
  private readonly boxKey: string;
  private readonly heardKey: string;
  private readonly latencyKey: string;
  private readonly quotaKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.boxKey = `${prefix}:status:box`;
    this.heardKey = `${prefix}:status:heard`;
    this.latencyKey = `${prefix}:status:latency`;
    this.quotaKey = `${prefix}:status:quota`;
  }

  async reconciled(ref: MailboxRef, r: ReconciledStatus): Promise<void> {
    const record: BoxStatus = { reconciledAt: r.at, ms: Math.round(r.ms), store: r.store, imap: r.imap, applied: r.applied, ...(r.counts ? { counts: { new: r.counts.new, old: r.counts.old, urgent: r.counts.urgent } } : {}) };
    await this.redis.hset(this.boxKey, mailboxKey(ref), JSON.stringify(boxSchema.parse(record)));
  }

  /** Keeps what the last finished reconcile saw, and adds the failure. */
  async failed(ref: MailboxRef, message: string, at = Date.now()): Promise<void> {
    const field = mailboxKey(ref);
    const had = parsed(boxSchema, await this.redis.hget(this.boxKey, field)) ?? {};
    await this.redis.hset(this.boxKey, field, JSON.stringify({ ...had, failedAt: at, error: shortError(message) }));
  }

  /** The change behind the counts now wanted for `ref` was heard at `at` (epoch ms). */
  async heard(ref: MailboxRef, at: number): Promise<void> {
    await this.redis.hset(this.heardKey, mailboxKey(ref), String(at));
  }

  /** A target confirmed the counts now wanted for `ref`: one change-to-lamp sample. */
  async published(target: string, ref: MailboxRef, now = Date.now()): Promise<LatencySample | undefined> {
    const raw = await this.redis.hget(this.heardKey, mailboxKey(ref));
    const heardAt = raw === null ? NaN : Number(raw);
    if (!Number.isFinite(heardAt)) return undefined;
    const sample: LatencySample = { at: now, target, ms: Math.max(0, now - heardAt) };
    await this.redis.multi().lpush(this.latencyKey, JSON.stringify(sample)).ltrim(this.latencyKey, 0, LATENCY_SAMPLES - 1).exec();
    return sample;
  }

  async quotaRead(imapUser: string, readings: readonly { resource: string; usage: number; limit: number }[], at = Date.now()): Promise<void> {
    const record = quotaSchema.parse({ at, readings: readings.map((r) => ({ resource: r.resource, usage: r.usage, limit: r.limit })) });
    await this.redis.hset(this.quotaKey, imapUser, JSON.stringify(record));
  }

  async read(): Promise<StatusSnapshot> {
    const [boxes, quota, latency] = await Promise.all([this.redis.hgetall(this.boxKey), this.redis.hgetall(this.quotaKey), this.redis.lrange(this.latencyKey, 0, LATENCY_SAMPLES - 1)]);
    const boxMap = new Map<string, BoxStatus>();
    for (const [k, v] of Object.entries(boxes)) {
      const b = parsed(boxSchema, v);
      if (b) boxMap.set(k, b);
    }
    const quotaMap = new Map<string, QuotaStatus>();
    for (const [k, v] of Object.entries(quota)) {
      const q = parsed(quotaSchema, v);
      if (q) quotaMap.set(k, q);
    }
    const samples: LatencySample[] = [];
    for (const v of latency) {
      const s = parsed(latencySchema, v);
      if (s) samples.push(s);
    }
    return { boxes: boxMap, quota: quotaMap, latency: samples };
  }
}
