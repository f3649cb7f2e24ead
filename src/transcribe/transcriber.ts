/**
 * The transcription stage of one voicemail email. It runs inside the email build (the queue of
 * its own is the next step, docs/transcription.md) and is made so that it cannot hold voicemail
 * back: the email waits at most the budget, whatever the engine, SoX or the slot queue do; past
 * it the engine is killed and the email goes with a line saying the transcript was not ready.
 * Nothing here throws into the reconcile: every failure becomes one line in the email and a log line.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bestSource } from '../audio/formats.js';
import { readVoicemailConf, type VoicemailConf } from '../config/voicemail-conf.js';
import type { Settings } from '../config/schema.js';
import type { EmailTranscript } from '../imap/voicemail-email.js';
import type { Logger } from '../log.js';
import { isNewFinding } from '../spool/report-once.js';
import { mailboxKey, type MailboxRef, type SpoolMessage } from '../spool/types.js';
import type { Transcript, TranscriptionEngine } from './engine.js';
import { Limiter } from './limiter.js';
import { boxTranscription, modelKeyFor } from './policy.js';
import { prepareWav } from './prepare.js';
import { cleanTranscript } from './text.js';

/** What the reconcile needs of the stage. */
export interface EmailTranscriber {
  /** Never rejects. Undefined: this mailbox's voicemail is not transcribed. */
  forEmail(ref: MailboxRef, message: SpoolMessage, readAudio: (path: string) => Promise<Buffer>, log: Logger): Promise<EmailTranscript | undefined>;
  close(): Promise<void>;
}

export type TranscriptionSettings = Settings['transcription'];

export interface TranscriberOptions {
  readonly settings: TranscriptionSettings;
  /** Language key (as in transcription.models) to its checked engine. */
  readonly engines: ReadonlyMap<string, TranscriptionEngine>;
  /** voicemail.conf, for vmbridge_transcribe= and language= of each mailbox (its server's). */
  readonly voicemailConf: string;
  /** The voicemail.conf of each named server (MailboxRef.server); voicemailConf is the main one's. */
  readonly serverConfs?: ReadonlyMap<string, string>;
  /** The SoX program (email.audioTool.command). */
  readonly sox: string;
}

export type Outcome =
  | { readonly status: 'done'; readonly transcript: Transcript }
  | { readonly status: 'empty'; readonly transcript: Transcript }
  | { readonly status: 'late'; readonly budgetMs: number }
  | { readonly status: 'failed'; readonly problem: string };

/** voicemail.conf is read again when it changed, and at least this often (its #include files). */
const CONF_MAX_AGE_MS = 60_000;

export const TRANSCRIPT_HEADING = 'Transcript (automatic, may contain errors):';

/** The email's share of an outcome: the text, or the one line that says why there is none. */
export function emailTranscript(outcome: Outcome): EmailTranscript {
  switch (outcome.status) {
    case 'done':
      return { text: outcome.transcript.text, heading: TRANSCRIPT_HEADING };
    case 'empty':
      return { note: 'Transcript: no speech was recognised in the recording.' };
    case 'late':
      return { note: 'Transcript: not ready in time; this email went without it. Listen to the recording.' };
    case 'failed':
      return { note: 'Transcript: the transcription failed; listen to the recording.' };
  }
}

/**
 * Engine processes at once (and the transcription worker's concurrency): the setting, else one
 * for every four cores, at least one, so a small host spends at most one core on transcripts.
 */
export function transcriptionConcurrency(settings: Pick<TranscriptionSettings, 'concurrency'>, cores = availableParallelism()): number {
  return settings.concurrency ?? Math.max(1, Math.floor(cores / 4));
}

/** How long the email waits: budgetSeconds + budgetPerAudioSecond x duration, at most budgetMaxSeconds. */
export function budgetMs(settings: Pick<TranscriptionSettings, 'budgetSeconds' | 'budgetPerAudioSecond' | 'budgetMaxSeconds'>, durationSeconds: number | undefined): number {
  const d = durationSeconds !== undefined && Number.isFinite(durationSeconds) && durationSeconds > 0 ? durationSeconds : 0;
  return Math.round(Math.min(settings.budgetMaxSeconds, settings.budgetSeconds + settings.budgetPerAudioSecond * d) * 1000);
}

export class Transcriber implements EmailTranscriber {
  private readonly limiter: Limiter;
  private readonly confs = new Map<string, { value: Promise<VoicemailConf>; mtimeMs: number; at: number }>();
  private scratch: Promise<string> | undefined;
  private counter = 0;

  constructor(private readonly opts: TranscriberOptions) {
    this.limiter = new Limiter(transcriptionConcurrency(opts.settings));
  }

  async forEmail(ref: MailboxRef, message: SpoolMessage, readAudio: (path: string) => Promise<Buffer>, log: Logger): Promise<EmailTranscript | undefined> {
    try {
      const choice = await this.choose(ref, log);
      if (!choice) return undefined;
      const outcome = await this.run(choice.engine, choice.language, message, readAudio);
      this.report(outcome, message, log);
      return emailTranscript(outcome);
    } catch (err) {
      // Only voicemail.conf can fail here (the run itself never throws): no transcript, no stop.
      log.warn({ id: message.id, err: err instanceof Error ? err.message : String(err) }, 'transcription skipped');
      return undefined;
    }
  }

  /** Transcribes one message within its budget (or `limitMs`, the worker's cap). Never rejects. */
  async run(engine: TranscriptionEngine, language: string, message: SpoolMessage, readAudio: (path: string) => Promise<Buffer>, limitMs?: number): Promise<Outcome> {
    const budget = limitMs ?? budgetMs(this.opts.settings, message.envelope.duration);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error('over budget'));
        resolve({ status: 'late', budgetMs: budget });
      }, budget);
    });
    const work = this.work(engine, language, message, readAudio, controller.signal).catch((err: unknown): Outcome => ({ status: 'failed', problem: err instanceof Error ? err.message : String(err) }));
    try {
      const outcome = await Promise.race([work, late]);
      // The budget may have run out while the failure was being reported.
      return controller.signal.aborted ? { status: 'late', budgetMs: budget } : outcome;
    } finally {
      clearTimeout(timer);
      controller.abort(new Error('done'));
    }
  }

  async close(): Promise<void> {
    const dir = this.scratch;
    this.scratch = undefined;
    if (dir) await rm(await dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private async work(engine: TranscriptionEngine, language: string, message: SpoolMessage, readAudio: (path: string) => Promise<Buffer>, signal: AbortSignal): Promise<Outcome> {
    const source = bestSource(message.audio);
    if (!source) return { status: 'failed', problem: 'no recording of this message can be read by the audio tool' };
    const release = await this.limiter.acquire(signal);
    const started = performance.now();
    const wav = join(await this.scratchDir(), `${process.pid}-${++this.counter}.wav`);
    try {
      const input = await readAudio(source.path);
      const prepared = await prepareWav(this.opts.sox, input, source.ext, wav, signal, this.opts.settings.nice);
      const out = await engine.transcribe({ wavPath: prepared.path, language, signal });
      const text = cleanTranscript(out.text, this.opts.settings.maxChars);
      const transcript: Transcript = {
        text,
        language: out.language ?? language,
        ...(out.confidence !== undefined ? { confidence: out.confidence } : {}),
        engine: engine.engine,
        model: engine.model,
        ms: Math.round(performance.now() - started),
        audioSeconds: Math.round(prepared.seconds * 100) / 100,
      };
      return { status: text === '' ? 'empty' : 'done', transcript };
    } finally {
      release();
      await rm(wav, { force: true }).catch(() => undefined);
    }
  }

  /** The engine and language of a mailbox, from voicemail.conf; undefined: not transcribed. */
  async choose(ref: MailboxRef, log: Logger): Promise<{ engine: TranscriptionEngine; language: string; model: string } | undefined> {
    const path = ref.server === undefined ? this.opts.voicemailConf : this.opts.serverConfs?.get(ref.server);
    if (path === undefined) return undefined;
    const conf = await this.voicemailConf(path);
    const box = conf.boxes.find((b) => b.context === ref.context && b.mailbox === ref.mailbox);
    if (!box) return undefined;
    const policy = boxTranscription(conf, box, this.opts.settings);
    if (policy.problem && isNewFinding(`transcription ${mailboxKey(ref)}`, policy.problem)) {
      log.warn({ file: box.file, line: box.line, problem: policy.problem }, 'voicemail.conf mailbox problem');
    }
    if (!policy.on) return undefined;
    const key = modelKeyFor(policy.language, this.opts.engines.keys());
    const engine = key === undefined ? undefined : this.opts.engines.get(key);
    if (!engine) {
      if (isNewFinding(`transcription language ${policy.language}`, 'no model')) {
        log.warn({ language: policy.language, configured: [...this.opts.engines.keys()] }, `no transcription model for language ${policy.language}: its mailboxes get no transcript; add one under transcription.models`);
      }
      return undefined;
    }
    return { engine, language: policy.language, model: key! };
  }

  /** The checked engine of a transcription.models key. */
  engine(model: string): TranscriptionEngine | undefined {
    return this.opts.engines.get(model);
  }

  get settings(): TranscriptionSettings {
    return this.opts.settings;
  }

  private async voicemailConf(path: string): Promise<VoicemailConf> {
    const mtimeMs = (await stat(path)).mtimeMs;
    const now = Date.now();
    let conf = this.confs.get(path);
    if (!conf || conf.mtimeMs !== mtimeMs || now - conf.at > CONF_MAX_AGE_MS) {
      const value = readVoicemailConf(path);
      conf = { value, mtimeMs, at: now };
      this.confs.set(path, conf);
      value.catch(() => {
        if (this.confs.get(path)?.value === value) this.confs.delete(path);
      });
    }
    return conf.value;
  }

  report(outcome: Outcome, message: SpoolMessage, log: Logger): void {
    switch (outcome.status) {
      case 'done':
      case 'empty': {
        const t = outcome.transcript;
        // The words themselves stay out of the log: they are the caller's message.
        log.info({ id: message.id, engine: t.engine, model: t.model, language: t.language, confidence: t.confidence, ms: t.ms, audioSeconds: t.audioSeconds, realTimeFactor: t.audioSeconds > 0 ? Math.round((t.ms / 1000 / t.audioSeconds) * 100) / 100 : undefined, chars: t.text.length }, outcome.status === 'done' ? 'voicemail transcribed' : 'voicemail transcribed: no speech recognised');
        break;
      }
      case 'late':
        log.warn({ id: message.id, budgetMs: outcome.budgetMs }, 'transcript not ready within its budget; the email goes without it (see transcription.budgetSeconds)');
        break;
      case 'failed':
        log.warn({ id: message.id, problem: outcome.problem }, 'transcription failed; the email goes without a transcript');
        break;
    }
  }

  private scratchDir(): Promise<string> {
    this.scratch ??= mkdtemp(join(tmpdir(), 'vmbridge-transcribe-'));
    return this.scratch;
  }
}
