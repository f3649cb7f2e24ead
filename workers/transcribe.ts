/**
 * The transcription worker: takes one voicemail per job, runs its engine (at most
 * transcription.concurrency at once, each under nice), keeps the outcome in Redis, then replaces
 * the email if it went out without the transcript (src/transcribe/replace.ts). It has its own
 * queue and its own Redis connection, so a slow engine holds up no reconcile and no lamp; the
 * engine runs only in this worker.
 */
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/queue/redis-connection.js';
import { startWorker, type ClosableWorker } from '../src/queue/worker-close.js';
import { SpoolBusyError } from '../src/errors.js';
import { isSyncedSpoolFolder, mailboxKey, type MailboxRef } from '../src/spool/types.js';
import { refOfJob } from '../src/queue/box-fields.js';
import type { Directory } from '../src/sync/directory.js';
import { QUEUE_TRANSCRIBE, transcribeJobSchema, type OutcomeStore, type TranscribeJob } from '../src/queue/transcribe-queue.js';
import { replaceLate, type ReplaceDeps, type ReplaceResult } from '../src/transcribe/replace.js';
import { transcriptionConcurrency, type Outcome, type Transcriber } from '../src/transcribe/transcriber.js';

export interface TranscribeWorkerDeps extends ReplaceDeps {
  readonly transcriber: Transcriber;
  readonly outcomes: OutcomeStore;
  readonly directory: () => Directory;
  /** Told after each job (metrics, tests). */
  readonly onDone?: (ref: MailboxRef, id: string, outcome: Outcome | undefined, result: ReplaceResult | { done: 'no-voicemail' }) => void;
}

export type TranscribeWorker = ClosableWorker<TranscribeJob>;

export function createTranscribeWorker(deps: TranscribeWorkerDeps): TranscribeWorker {
  const { settings, log } = deps;
  const prefix = settings.redis.prefix;
  const connection = createRedis(settings.redis, 'transcribe', { maxRetriesPerRequest: null });

  const handle = async (job: Job<TranscribeJob>): Promise<{ done: string }> => {
    const data = transcribeJobSchema.parse(job.data);
    const ref: MailboxRef = refOfJob(data);
    const box = deps.directory().boxes.get(mailboxKey(ref));
    if (!box) return { done: 'no-mailbox' };
    let outcome = await deps.outcomes.get(ref, data.id);
    if (!outcome) {
      // The recording is found by its identity now: it may have been moved or renumbered since the job was queued.
      const snapshot = await deps.store.readMailbox(ref);
      if (!snapshot.settled) throw new SpoolBusyError(mailboxKey(ref));
      const message = snapshot.messages.find((m) => m.id === data.id && isSyncedSpoolFolder(m.folder));
      if (!message) {
        log.info({ mailbox: mailboxKey(ref), id: data.id }, 'voicemail gone before its transcript was made: nothing to transcribe');
        deps.onDone?.(ref, data.id, undefined, { done: 'no-voicemail' });
        return { done: 'no-voicemail' };
      }
      const engine = deps.transcriber.engine(data.model);
      if (!engine) {
        // The settings changed since the job was queued: the email stays as it went.
        log.warn({ mailbox: mailboxKey(ref), id: data.id, model: data.model }, 'transcription job for a model no longer configured: dropped');
        return { done: 'no-model' };
      }
      const ran = await deps.transcriber.run(engine, data.language, message, (p) => deps.store.readAudio(ref, p), settings.transcription.maxSeconds * 1000);
      // Past the worker's own cap it is given up: the email then says it failed, not that it is late.
      outcome = ran.status === 'late' ? { status: 'failed', problem: `longer than transcription.maxSeconds (${settings.transcription.maxSeconds} s)` } : ran;
      deps.transcriber.report(outcome, message, log.child({ mailbox: mailboxKey(ref) }));
      await deps.outcomes.put(ref, data.id, outcome);
    }
    const result = await replaceLate(deps, box, data.id, outcome);
    if (result.done === 'email-gone') log.info({ mailbox: mailboxKey(ref), id: data.id }, 'late transcript not used: the email is gone (deleted, or not appended yet); nothing appended');
    if (result.done === 'replaced') log.info({ mailbox: mailboxKey(ref), id: data.id, uid: result.uid, folder: result.folder }, 'email replaced by the one with its transcript');
    deps.onDone?.(ref, data.id, outcome, result);
    return { done: result.done };
  };

  const started = startWorker(QUEUE_TRANSCRIBE, handle, connection, {
    prefix,
    concurrency: transcriptionConcurrency(settings.transcription),
    // An engine may run for minutes; the job's lock is renewed meanwhile, and a job of a killed
    // process is taken up again once it is seen stalled.
    lockDuration: 60_000,
    autorun: true,
  });
  const { worker } = started;
  worker.on('failed', (job, err) => log.warn({ mailbox: job ? mailboxKey(refOfJob(job.data)) : undefined, id: job?.data.id, attempt: job?.attemptsMade, err: err.message }, 'transcription job failed; retried with backoff'));
  worker.on('error', (err) => log.error({ err: err.message }, 'transcription worker error'));
  return started;
}
