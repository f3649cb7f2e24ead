/**
 * The contract every engine keeps. In: a 16 kHz mono 16-bit PCM WAV file (prepare.ts) and the
 * mailbox's language. Out: the text, and the language and a confidence where the engine gives
 * them. What the engine prints is untrusted: text.ts cleans and bounds it before any email sees it.
 */
export interface EngineInput {
  readonly wavPath: string;
  readonly language: string;
  /** Aborted when the email stops waiting: the engine's process is killed. */
  readonly signal: AbortSignal;
}

export interface EngineOutput {
  readonly text: string;
  readonly language?: string;
  /** 0 to 1, where the engine gives one. */
  readonly confidence?: number;
}

export interface TranscriptionEngine {
  /** pocketsphinx, command, ... */
  readonly engine: string;
  /** What emails and logs call the model. */
  readonly model: string;
  /** Throws TranscriptionError naming the setting when the program or a model file cannot be used. */
  check(): Promise<void>;
  transcribe(input: EngineInput): Promise<EngineOutput>;
}

/** A finished transcript, as the email and the logs get it. */
export interface Transcript {
  readonly text: string;
  readonly language: string;
  readonly confidence?: number;
  readonly engine: string;
  readonly model: string;
  /** From the start of the work (preparing the WAV included) to the text. */
  readonly ms: number;
  /** Seconds of speech the engine got (after trimming). */
  readonly audioSeconds: number;
}
