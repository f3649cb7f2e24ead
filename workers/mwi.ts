/**
 * The MWI workers: one BullMQ worker per target, on that target's own queue, so a dead or slow
 * target delays no other. A job names a mailbox only; the worker reads the latest desired counts,
 * publishes them if they differ from what this target last got, and records them. Jobs for one
 * (target, mailbox) never run at once (a Redis lock), so publications reach a target in the order
 * the counts were read: a light never goes back to an older value.
 */
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis, describeRedisError } from '../src/queue/redis-connection.js';
import type { MwiTarget, Settings } from '../src/config/schema.js';
import type { Logger } from '../src/log.js';
import { sameAsShown } from '../src/mwi/counts.js';
import { createSender, type MwiSender, type MwiTargetHealth } from '../src/mwi/targets.js';
import { acquireMailboxLock } from '../src/queue/mailbox-lock.js';
import { mwiBackoffMs, mwiJobSchema, mwiLockKey, mwiQueueName, type MwiJob, type MwiStore } from '../src/queue/mwi-queue.js';
import { mailboxKey, type MailboxRef } from '../src/spool/types.js';
import { refOfJob } from '../src/queue/box-fields.js';
import { startWorker } from '../src/queue/worker-close.js';

export interface MwiWorkerDeps {
  readonly settings: Settings;
  readonly redis: Redis;
  readonly store: MwiStore;
  readonly log: Logger;
  /** Queues one more job for (target, mailbox); used when the counts keep changing under a job. */
  readonly requeue: (target: string, ref: MailboxRef) => Promise<unknown>;
  /** Tests may hand in senders by target name; otherwise one is made from the settings. */
  readonly senders?: ReadonlyMap<string, MwiSender>;
  /** Told after each delivery (metrics, tests). */
  readonly onPublished?: (target: string, ref: MailboxRef, counts: { new: number; old: number; urgent: number }) => void;
  /** Told after each attempt to send, delivered or not, with how long the target took (metrics). */
  readonly onAttempt?: (target: string, ok: boolean, ms: number) => void;
}

export interface MwiWorkers {
  readonly workers: readonly Worker<MwiJob>[];
  /** One entry per mwi.targets entry, in the settings' order. */
  health(): MwiTargetHealth[];
  close(): Promise<void>;
}

/** An error's text for /readyz, with the target's secret or password (if it ever appeared) masked. */
function withoutSecrets(text: string, target: MwiTarget): string {
  const secret = target.kind === 'sip-notify' ? target.password : target.kind === 'smdi' ? undefined : target.secret;
  return secret !== undefined && secret.length >= 3 ? text.split(secret).join('***') : text;
}

/** How long close() waits for a target's job in progress. */
const CLOSE_GRACE_MS = 5_000;

/** Publications per job at most when the counts keep changing; then the job hands over to a new one. */
const MAX_ROUNDS = 5;

export function createMwiWorkers(deps: MwiWorkerDeps): MwiWorkers {
  const made = deps.settings.mwi.targets.map((target) => createTargetWorker(deps, target));
  return {
    workers: made.map((m) => m.worker),
    health: () => made.map((m) => m.health()),
    async close() {
      await Promise.all(made.map((m) => m.close()));
    },
  };
}

function createTargetWorker(deps: MwiWorkerDeps, target: MwiTarget): { worker: Worker<MwiJob>; health(): MwiTargetHealth; close(): Promise<void> } {
  const { settings, redis, store } = deps;
  const prefix = settings.redis.prefix;
  const log = deps.log.child({ mwiTarget: target.name });
  const retry = { initialMs: settings.mwi.retrySeconds * 1000, maxMs: settings.mwi.retryMaxSeconds * 1000 };
  const sender = deps.senders?.get(target.name) ?? createSender(target, { log: deps.log, reconnectMaxMs: retry.maxMs });
  // BullMQ blocks on this connection waiting for jobs, so it cannot be shared with other commands.
  const connection = createRedis(settings.redis, `mwi-${target.name}`, { maxRetriesPerRequest: null });
  let last: MwiTargetHealth['last'];
  const send = async (ref: MailboxRef, desired: { new: number; old: number; urgent: number }): Promise<void> => {
    const started = performance.now();
    try {
      await sender.publish(ref, desired);
    } catch (err) {
      last = { at: Date.now(), ok: false, error: withoutSecrets(err instanceof Error ? err.message : String(err), target) };
      deps.onAttempt?.(target.name, false, performance.now() - started);
      throw err;
    }
    last = { at: Date.now(), ok: true };
    deps.onAttempt?.(target.name, true, performance.now() - started);
  };

  const handle = async (job: Job<MwiJob>): Promise<{ published: number }> => {
    const data = mwiJobSchema.parse(job.data);
    const ref: MailboxRef = refOfJob(data);
    const lock = await acquireMailboxLock(redis, mwiLockKey(prefix, target.name, ref));
    try {
      // A request made while this job runs is kept by BullMQ as one more job, created when this
      // one ends; one made while it waited or waits for a retry needs none (./mwi-queue.ts). So
      // the counts read below are at least as new as any request this job stands for.
      let published = 0;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const desired = await store.desired(ref);
        if (desired === undefined) return { published }; // never counted: unknown, not zero
        if (sameAsShown(target.kind, await store.published(target.name, ref), desired)) return { published };
        await send(ref, desired);
        await store.setPublished(target.name, ref, desired);
        published++;
        deps.onPublished?.(target.name, ref, desired);
        log.info({ mailbox: mailboxKey(ref), new: desired.new, old: desired.old, urgent: desired.urgent, kind: target.kind }, 'MWI published');
      }
      await deps.requeue(target.name, ref);
      return { published };
    } finally {
      await lock.release().catch(() => undefined);
    }
  };

  const started = startWorker(mwiQueueName(target.name), handle, connection, {
    prefix,
    concurrency: settings.mwi.concurrency,
    autorun: true,
    settings: { backoffStrategy: (attemptsMade: number) => mwiBackoffMs(attemptsMade, retry) },
  });
  const { worker } = started;
  worker.on('failed', (job, err) => {
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    const mailbox = job ? mailboxKey(refOfJob(job.data)) : undefined;
    // Given up: BullMQ drops the job's deduplication key, so the next change queues a fresh job.
    log[final ? 'error' : 'warn']({ mailbox, attempt: job?.attemptsMade, err: err.message }, final ? 'MWI publish failed for good; the job is kept as failed' : 'MWI publish failed; retried with backoff');
  });
  worker.on('error', (err) => log.error({ err: describeRedisError(err, settings.redis) }, 'MWI worker error'));
  return {
    worker,
    health: () => ({
      name: target.name,
      kind: target.kind,
      ...(sender.connection ? { connection: sender.connection() } : {}),
      ...(last ? { last } : {}),
    }),
    async close() {
      // Stop taking jobs first, then end the sender so a send still under way (a SIP transaction
      // may take 32 s) fails now instead of holding shutdown; its job is retried later.
      const closing = started.close(CLOSE_GRACE_MS);
      await sender.close();
      // A job still stuck on a target or a Redis that went away must not hold shutdown forever:
      // after a grace period the connection is dropped; the job is taken up again as stalled.
      if (!(await closing)) log.warn({ target: target.name, graceMs: CLOSE_GRACE_MS }, 'MWI worker did not finish its job in time; closed without waiting (the job is retried)');
    },
  };
}
