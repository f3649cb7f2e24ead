/** Queue names and job payloads. Payloads are validated on both ends: a job is data from Redis. */
import { z } from 'zod';
import { boxFields } from './box-fields.js';

export const QUEUE_RECONCILE = 'reconcile';
/** Passes over every mailbox (start-up, sweep, reload): a queue and worker of their own (docs/sync.md). */
export const QUEUE_RECONCILE_BACKGROUND = 'reconcile-background';

export const reconcileJobSchema = z.strictObject({
  ...boxFields,
  /** What asked for it (watcher, notify, sweep, start, cli): for logs and metrics only. */
  reason: z.string().max(64),
});
export type ReconcileJob = z.infer<typeof reconcileJobSchema>;
