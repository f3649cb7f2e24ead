/**
 * The email side of the transcription worker: the reconcile asks for a voicemail's transcript,
 * which queues it (src/queue/transcribe-queue.ts), and waits for the outcome at most the budget.
 * Ready in time: the email carries it. Not ready: the email goes at once, marked pending, and the
 * worker replaces it when the transcript comes (replace.ts). The engine is never stopped because
 * an email stopped waiting: its work is what the replacement carries.
 */
import type { EmailTranscript } from '../imap/voicemail-email.js';
import type { Logger } from '../log.js';
import type { OutcomeStore, TranscribeRequester } from '../queue/transcribe-queue.js';
import type { MailboxRef, SpoolMessage } from '../spool/types.js';
import { jobBox } from '../queue/box-fields.js';
import { budgetMs, emailTranscript, type EmailTranscriber, type Transcriber } from './transcriber.js';

export const PENDING_NOTE = 'Transcript: still being made; this email is replaced by one with the transcript when it is ready.';

export interface QueuedTranscriberOptions {
  readonly transcriber: Transcriber;
  readonly requester: TranscribeRequester;
  readonly outcomes: OutcomeStore;
  /** How often the outcome is looked for while the email waits. */
  readonly pollMs?: number;
}

export class QueuedTranscriber implements EmailTranscriber {
  constructor(private readonly opts: QueuedTranscriberOptions) {}

  async forEmail(ref: MailboxRef, message: SpoolMessage, _readAudio: (path: string) => Promise<Buffer>, log: Logger): Promise<EmailTranscript | undefined> {
    const started = Date.now();
    let choice: Awaited<ReturnType<Transcriber['choose']>>;
    try {
      choice = await this.opts.transcriber.choose(ref, log);
    } catch (err) {
      log.warn({ id: message.id, err: err instanceof Error ? err.message : String(err) }, 'transcription skipped');
      return undefined;
    }
    if (!choice) return undefined;
    const budget = budgetMs(this.opts.transcriber.settings, message.envelope.duration);
    try {
      const known = await this.opts.outcomes.get(ref, message.id);
      if (known) return emailTranscript(known);
      await this.opts.requester.request({ ...jobBox(ref), id: message.id, language: choice.language, model: choice.model });
      const poll = this.opts.pollMs ?? 100;
      while (Date.now() - started < budget) {
        await new Promise((r) => setTimeout(r, Math.min(poll, Math.max(1, budget - (Date.now() - started)))));
        const outcome = await this.opts.outcomes.get(ref, message.id);
        if (outcome) return emailTranscript(outcome);
      }
    } catch (err) {
      // Redis failing here: no job may exist to replace the email, so it says plainly there is no transcript.
      log.warn({ id: message.id, err: err instanceof Error ? err.message : String(err) }, 'transcription not queued; the email goes without a transcript');
      return emailTranscript({ status: 'failed', problem: 'not queued' });
    }
    log.info({ id: message.id, budgetMs: budget }, 'transcript not ready within its budget; the email goes now and is replaced when it is ready');
    return { note: PENDING_NOTE, pending: true };
  }

  async close(): Promise<void> {
    await this.opts.transcriber.close();
  }
}
