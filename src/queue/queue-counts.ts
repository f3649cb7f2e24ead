/**
 * How many jobs each BullMQ queue holds, by state, read from Redis when asked (the metrics page
 * asks at every scrape). Read-only: the Queue objects here never add a job.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

/** The states counted; completed and failed are the jobs BullMQ keeps (removeOnComplete/Fail). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export interface QueueCounts {
  readonly queue: string;
  readonly counts: Partial<Record<QueueState, number>>;
}

export class QueueCounter {
  private readonly queues: Queue[];

  constructor(redis: Redis, prefix: string, names: readonly string[]) {
    this.queues = names.map((name) => {
      const q = new Queue(name, { connection: redis, prefix });
      // A Redis that is gone shows as the series left out of a scrape; the service logs it once.
      q.on('error', errorsLoggedByConnectionOwner);
      return q;
    });
  }

  async counts(): Promise<QueueCounts[]> {
    return Promise.all(this.queues.map(async (q) => ({ queue: q.name, counts: await q.getJobCounts(...QUEUE_STATES) })));
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
