/**
 * The `alert` queue: mails to administrators, sent by workers/alert.ts. Its own queue, so a mail
 * server that is down or slow delays alerts (retried with backoff) and never a reconcile.
 * Payloads are validated here when added and again by the worker: a job is data from Redis.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';
import { boxFields } from './box-fields.js';

export const QUEUE_ALERT = 'alert';

const text = (max: number) => z.string().max(max).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL');

export const alertBoxSchema = z.strictObject({
  ...boxFields,
  ownerName: text(200),
  ownerEmail: text(320),
});
export type AlertBox = z.infer<typeof alertBoxSchema>;

export const quotaReadingSchema = z.strictObject({
  root: text(200),
  resource: text(64),
  usage: z.number().nonnegative(),
  limit: z.number().positive(),
  unit: z.enum(['bytes', 'messages', 'units']),
});

/** A quota resource reached a threshold, or the server refused a voicemail for quota. */
export const quotaAlertSchema = z.strictObject({
  kind: z.literal('quota'),
  imapUser: text(320),
  /** Every voicemail box that logs in as this IMAP user (a shared account holds several). */
  boxes: z.array(alertBoxSchema).min(1).max(100),
  /** The resource the alert is about (STORAGE, MESSAGE, ...), or QUOTA when it could not be read. */
  resource: text(64),
  /** The threshold reached, in percent. */
  threshold: z.number().int().min(1).max(100),
  /** Every resource read with it (empty when the server offers no quota reading). */
  readings: z.array(quotaReadingSchema).max(20),
  /** The server's refusal of an APPEND, when that is what triggered the alert. */
  refusal: text(400).optional(),
  at: z.iso.datetime(),
});
export type QuotaAlert = z.infer<typeof quotaAlertSchema>;

/** A spool folder is close to Asterisk's maxmsg: callers will soon be refused. */
export const maxmsgAlertSchema = z.strictObject({
  kind: z.literal('maxmsg'),
  box: alertBoxSchema,
  folder: z.enum(['INBOX', 'Urgent']),
  count: z.number().int().nonnegative(),
  maxmsg: z.number().int().positive(),
  at: z.iso.datetime(),
});
export type MaxmsgAlert = z.infer<typeof maxmsgAlertSchema>;

/** The installation-wide deletion breaker opened: every deletion is held until released. */
export const breakerAlertSchema = z.strictObject({
  kind: z.literal('breaker'),
  since: z.iso.datetime(),
  deletions: z.number().int().nonnegative(),
  max: z.number().int().positive(),
  windowSeconds: z.number().int().positive(),
  /** The mailbox whose plan opened it. */
  mailbox: text(200),
  at: z.iso.datetime(),
});
export type BreakerAlert = z.infer<typeof breakerAlertSchema>;

/** One mail about every alert the flood cap held back. */
export const summaryAlertSchema = z.strictObject({
  kind: z.literal('summary'),
  at: z.iso.datetime(),
});

export const alertJobSchema = z.discriminatedUnion('kind', [quotaAlertSchema, maxmsgAlertSchema, breakerAlertSchema, summaryAlertSchema]);
export type AlertJob = z.infer<typeof alertJobSchema>;

export class AlertProducer {
  readonly queue: Queue<AlertJob>;

  constructor(redis: Redis, prefix: string) {
    this.queue = new Queue<AlertJob>(QUEUE_ALERT, {
      connection: redis,
      prefix,
      defaultJobOptions: {
        // About 85 minutes of retries (10 s doubling): an SMTP server down for maintenance still
        // gets the mail; after that the job stays visible as failed.
        attempts: 10,
        backoff: { type: 'exponential', delay: 10_000 },
        removeOnComplete: { count: 1_000 },
        removeOnFail: { count: 5_000 },
      },
    });
    this.queue.on('error', errorsLoggedByConnectionOwner);
  }

  async send(job: AlertJob, opts: { delayMs?: number } = {}): Promise<void> {
    const data = alertJobSchema.parse(job);
    await this.queue.add(data.kind, data, opts.delayMs !== undefined ? { delay: Math.max(0, Math.round(opts.delayMs)) } : {});
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
