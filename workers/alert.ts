/**
 * The alert worker: mails administrators what the quota watch queued. One mail at a time (alerts
 * are rare, and the flood cap is simplest to keep that way); a failed send is retried by BullMQ
 * with backoff and never touches a reconcile. Over the hourly cap, alerts are held back, logged,
 * and sent as one summary once the hour has room.
 */
import type { Job, Worker } from 'bullmq';
import { createRedis, describeRedisError } from '../src/queue/redis-connection.js';
import { composeAlertMail, createAlertTransport, mailConfigured, sendAlertMail, summaryMail, type AlertTransport } from '../src/alerts/admin-mail.js';
import type { AlertState } from '../src/alerts/state.js';
import type { Settings } from '../src/config/schema.js';
import type { Logger } from '../src/log.js';
import { alertJobSchema, QUEUE_ALERT, type AlertJob, type AlertProducer } from '../src/queue/alert-queue.js';
import { startWorker } from '../src/queue/worker-close.js';

export interface AlertWorkerDeps {
  readonly settings: Settings;
  readonly state: AlertState;
  /** For the summary job the flood cap schedules. */
  readonly producer: AlertProducer;
  readonly log: Logger;
  /** Tests may hand in their own transport; otherwise one is made from alerts.smtp. */
  readonly transport?: AlertTransport;
}

export interface AlertWorker {
  readonly worker: Worker<AlertJob>;
  close(): Promise<void>;
}

/** A summary never goes out sooner than this after the first held-back alert. */
const MIN_SUMMARY_DELAY_MS = 60_000;

export function createAlertWorker(deps: AlertWorkerDeps): AlertWorker {
  const { settings, state, log } = deps;
  const alerts = settings.alerts;
  const prefix = settings.redis.prefix;
  const transport = deps.transport ?? (alerts.smtp ? createAlertTransport(alerts.smtp) : undefined);
  // BullMQ blocks on this connection waiting for jobs, so it cannot be shared with other commands.
  const connection = createRedis(settings.redis, 'alert-worker', { maxRetriesPerRequest: null });

  const handle = async (job: Job<AlertJob>): Promise<{ mailed: boolean; held?: number }> => {
    const data = alertJobSchema.parse(job.data);
    if (!mailConfigured(alerts) || !transport) {
      log.warn({ kind: data.kind }, 'alert not mailed: alerts.to and alerts.smtp are not both set');
      return { mailed: false };
    }
    if (data.kind === 'summary') {
      // Cleared first: an alert held back from here on schedules the next summary.
      await state.summaryDone();
      const held = await state.takeHeld();
      if (held.length === 0) return { mailed: false, held: 0 };
      try {
        await sendAlertMail(transport, alerts, summaryMail(held, alerts));
      } catch (err) {
        for (const h of held) await state.hold(h);
        throw err;
      }
      log.info({ held: held.length, to: alerts.to }, 'summary of held-back alerts mailed');
      return { mailed: true, held: held.length };
    }

    const mail = composeAlertMail(data, alerts, { imapToSpool: settings.sync.imapToSpool });
    const now = Date.now();
    const decision = await state.admit(now, alerts.maxMailsPerHour);
    if (!decision.admit) {
      await state.hold({ at: data.at, subject: mail.subject });
      const delayMs = Math.max(MIN_SUMMARY_DELAY_MS, (decision.roomAt ?? now) - now);
      if (await state.claimSummary(delayMs + 10 * 60_000)) await deps.producer.send({ kind: 'summary', at: new Date(now).toISOString() }, { delayMs });
      log.warn({ subject: mail.subject, sentLastHour: decision.inWindow, limit: alerts.maxMailsPerHour }, 'alert mail held back (alerts.maxMailsPerHour); it will be in one summary mail');
      return { mailed: false };
    }
    try {
      const messageId = await sendAlertMail(transport, alerts, mail);
      log.info({ subject: mail.subject, to: alerts.to, messageId }, 'alert mailed');
    } catch (err) {
      // The slot was not used: a mail that failed must not count against the hour.
      await decision.release().catch(() => undefined);
      throw err;
    }
    return { mailed: true };
  };

  const started = startWorker(QUEUE_ALERT, handle, connection, { prefix, concurrency: 1, autorun: true });
  const { worker } = started;
  worker.on('failed', (job, err) => {
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    log[final ? 'error' : 'warn']({ kind: job?.data.kind, attempt: job?.attemptsMade, err: err.message }, final ? 'alert mail failed for good; the job is kept as failed' : 'alert mail failed; retried with backoff');
  });
  worker.on('error', (err) => log.error({ err: describeRedisError(err, settings.redis) }, 'alert worker error'));
  return {
    worker,
    async close() {
      // A job waiting on a mail server or a Redis that went away must not hold shutdown forever.
      if (!(await started.close(settings.sync.stopTimeoutSeconds * 1000))) log.warn({ timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'alert mail in progress did not finish in time; closed without waiting (the job is retried)');
      transport?.close();
    },
  };
}
