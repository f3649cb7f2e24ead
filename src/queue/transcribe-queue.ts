/**
 * The transcription queue: one job per voicemail (its identity), run by the transcription worker
 * (workers/transcribe.ts) with a concurrency of its own, so an engine never takes a slot of the
 * reconciles or the MWI publishers.
 *
 * A job's id is derived from the voicemail's identity, so asking twice (a retried reconcile, a
 * restart) queues it once. The outcome is kept in Redis under the same identity
 * (`<prefix>:transcript:<context>:<mailbox>:<id>`, for a week): the email being built reads it
 * while it waits its budget, and a reconcile after a crash finds it without running the engine
 * again. Payloads and stored outcomes are validated on both ends: they are data from Redis.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { mailboxKey, redisBoxPart, type MailboxRef } from '../spool/types.js';
import { boxFields, refOfJob } from './box-fields.js';
import type { Outcome } from '../transcribe/transcriber.js';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

export const QUEUE_TRANSCRIBE = 'transcribe';

/** A msg_id, or the derived id of an older message: printable ASCII, bounded. */
const messageId = z.string().regex(/^[\x21-\x7e]{1,128}$/);
const language = z.string().regex(/^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$/);

export const transcribeJobSchema = z.strictObject({
  ...boxFields,
  /** The voicemail's identity (msg_id); the worker finds the recording by it, wherever it is now. */
  id: messageId,
  /** The mailbox's language, and the key of its model in transcription.models. */
  language,
  model: language,
});
export type TranscribeJob = z.infer<typeof transcribeJobSchema>;

const transcriptSchema = z.strictObject({
  text: z.string().max(20_000),
  language: z.string().max(35),
  confidence: z.number().min(0).max(1).optional(),
  engine: z.string().max(100),
  model: z.string().max(100),
  ms: z.number().nonnegative(),
  audioSeconds: z.number().nonnegative(),
});

const outcomeSchema = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('done'), transcript: transcriptSchema }),
  z.strictObject({ status: z.literal('empty'), transcript: transcriptSchema }),
  z.strictObject({ status: z.literal('late'), budgetMs: z.number().nonnegative() }),
  z.strictObject({ status: z.literal('failed'), problem: z.string().max(2_000) }),
]);

/** How long an outcome is kept: long past any reconcile retry, short enough not to pile up. */
export const OUTCOME_TTL_SECONDS = 7 * 24 * 3600;

export function outcomeKey(prefix: string, ref: MailboxRef, id: string): string {
  return `${prefix}:transcript:${redisBoxPart(ref)}:${id}`;
}

/** BullMQ job ids may not hold `:`; a hash of the identity has none and is the same every time. */
export function transcribeJobId(ref: MailboxRef, id: string): string {
  return `t-${createHash('sha256').update(ref.server === undefined ? `${ref.context}\0${ref.mailbox}\0${id}` : `${ref.server}\0${ref.context}\0${ref.mailbox}\0${id}`).digest('hex').slice(0, 40)}`;
}

export class OutcomeStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get(ref: MailboxRef, id: string): Promise<Outcome | undefined> {
    const raw = await this.redis.get(outcomeKey(this.prefix, ref, id));
    if (raw === null) return undefined;
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const parsed = outcomeSchema.safeParse(data);
    // Unreadable is unknown: the worker makes it again.
    return parsed.success ? (parsed.data as Outcome) : undefined;
  }

  async put(ref: MailboxRef, id: string, outcome: Outcome): Promise<void> {
    const value = JSON.stringify(outcomeSchema.parse(outcome));
    await this.redis.set(outcomeKey(this.prefix, ref, id), value, 'EX', OUTCOME_TTL_SECONDS);
  }
}

export class TranscribeRequester {
  readonly queue: Queue<TranscribeJob>;

  constructor(redis: Redis, prefix: string) {
    this.queue = new Queue<TranscribeJob>(QUEUE_TRANSCRIBE, {
      connection: redis,
      prefix,
      defaultJobOptions: {
        // An IMAP server that is down, a mailbox lock held by a long reconcile: retried for about an hour.
        attempts: 20,
        backoff: { type: 'exponential', delay: 2_000 },
        // Kept for a day, so a repeated request for the same voicemail finds it and adds nothing.
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
    this.queue.on('error', errorsLoggedByConnectionOwner);
  }

  /** Queues the voicemail's transcription; a job for it that already exists is left as it is. */
  async request(job: TranscribeJob): Promise<void> {
    const data = transcribeJobSchema.parse(job);
    await this.queue.add(mailboxKey(refOfJob(data)), data, { jobId: transcribeJobId(refOfJob(data), data.id) });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
