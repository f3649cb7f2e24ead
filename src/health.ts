/**
 * What the service shows of itself over HTTP: the metrics (with their scrape-time readers) and
 * the components /readyz checks, made from the parts startService already has.
 */
import type { Redis } from 'ioredis';
import type { Settings } from './config/schema.js';
import { Metrics } from './http/metrics.js';
import { amiSessionComponent, imapComponent, mwiTargetComponents, pushComponent, redisComponent } from './http/ready-checks.js';
import type { ComponentCheck } from './http/readiness.js';
import type { ImapPool } from './imap/pool.js';
import type { AmiSession } from './mwi/ami-session.js';
import type { MwiTargetHealth } from './mwi/targets.js';
import { QUEUE_ALERT } from './queue/alert-queue.js';
import type { DeleteBreaker } from './queue/delete-breaker.js';
import { QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND } from './queue/jobs.js';
import { mwiQueueName } from './queue/mwi-queue.js';
import { listPushSeen } from './queue/push-seen.js';
import { QueueCounter } from './queue/queue-counts.js';
import { QUEUE_QUOTA } from './queue/quota-queue.js';
import { QUEUE_TRANSCRIBE } from './queue/transcribe-queue.js';

/** An IMAP server that has not greeted within this long is down for /readyz. */
const IMAP_PROBE_MS = 2_500;

/** Rejects at once while Redis is not connected: a command would only wait in the offline queue. */
function connected<T>(redis: Redis, read: () => Promise<T>): Promise<T> {
  return redis.status === 'ready' ? read() : Promise.reject(new Error(`redis not connected (${redis.status})`));
}

/** Every BullMQ queue the installation's settings give (metrics and the queue view show these). */
export function installationQueues(settings: Settings, opts: { readonly transcription: boolean }): string[] {
  return [QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND, ...settings.mwi.targets.map((t) => mwiQueueName(t.name)), QUEUE_QUOTA, QUEUE_ALERT, ...(opts.transcription ? [QUEUE_TRANSCRIBE] : [])];
}

export function createMetrics(settings: Settings, redis: Redis, imap: ImapPool, breaker: DeleteBreaker, queueNames: readonly string[]): { metrics: Metrics; close(): Promise<void> } {
  const prefix = settings.redis.prefix;
  const queues = new QueueCounter(redis, prefix, queueNames);
  const metrics = new Metrics({
    queues: () => connected(redis, () => queues.counts()),
    imapConnections: () => ({ ...imap.limiter.open(), waiting: imap.limiter.waiting() }),
    breakerOpen: () => connected(redis, async () => (await breaker.state()) !== undefined),
  });
  metrics.targets(settings.mwi.targets.map((t) => t.name));
  return { metrics, close: () => queues.close() };
}

export function readinessChecks(parts: {
  readonly settings: Settings;
  readonly redis: Redis;
  /** The AMI session with each voicemail server that has one. */
  readonly amis: readonly { readonly where: { readonly host: string; readonly port: number }; readonly session: AmiSession }[];
  readonly mwiHealth: () => readonly MwiTargetHealth[];
}): () => readonly ComponentCheck[] {
  const { settings, redis } = parts;
  const checks: ComponentCheck[] = [redisComponent(redis), imapComponent(settings.imap, IMAP_PROBE_MS)];
  for (const ami of parts.amis) checks.push(amiSessionComponent(ami.where, ami.session.client));
  checks.push(...mwiTargetComponents(parts.mwiHealth));
  if (settings.http.push.enabled) checks.push(pushComponent(() => connected(redis, () => listPushSeen(redis, settings.redis.prefix))));
  return () => checks;
}
