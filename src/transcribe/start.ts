/**
 * The transcription stage of an installation, checked once at start. A configured program or
 * model file that cannot be used is an error naming the setting; the stage is then off for this
 * run, with one log line saying so, and voicemail flows without transcripts: a transcript is
 * worth less than the voicemail it describes, so it never stops the service from starting.
 */
import type { Settings, TranscriptionModel } from '../config/schema.js';
import { TranscriptionError } from '../errors.js';
import type { Logger } from '../log.js';
import { CommandEngine } from './command.js';
import type { TranscriptionEngine } from './engine.js';
import { PocketsphinxEngine } from './pocketsphinx.js';
import { SherpaEngine } from './sherpa.js';
import { findProgram } from './run.js';
import { Transcriber, transcriptionConcurrency } from './transcriber.js';

export function makeEngine(language: string, model: TranscriptionModel, nice: number): TranscriptionEngine {
  const setting = `transcription.models.${language}`;
  switch (model.engine) {
    case 'pocketsphinx':
      return new PocketsphinxEngine({ program: model.program, hmm: model.hmm, lm: model.lm, dict: model.dict, setting, nice, ...(model.model !== undefined ? { model: model.model } : {}) });
    case 'command':
      return new CommandEngine({ command: model.command, model: model.model, files: model.files, setting, nice });
    case 'sherpa-onnx':
      return new SherpaEngine({ modelDir: model.modelDir, kind: model.kind, threads: model.threads, setting, nice, ...(model.model !== undefined ? { model: model.model } : {}) });
  }
}

/** Every engine checked, or the first problem found. */
export async function checkTranscription(settings: Settings): Promise<Map<string, TranscriptionEngine>> {
  const t = settings.transcription;
  const sox = settings.email.audioTool.command;
  if (!(await findProgram(sox))) {
    throw new TranscriptionError(`email.audioTool.command: ${sox} is not found; transcription prepares its audio with SoX (Debian: apt-get install sox)`, { setting: 'email.audioTool.command' });
  }
  if (t.nice > 0 && !(await findProgram('nice'))) {
    throw new TranscriptionError('transcription.nice: the nice program is not found (Debian: coreutils); set transcription.nice: 0 to run engines without it', { setting: 'transcription.nice' });
  }
  const engines = new Map<string, TranscriptionEngine>();
  for (const [language, model] of Object.entries(t.models)) {
    const engine = makeEngine(language, model, t.nice);
    await engine.check();
    engines.set(language, engine);
  }
  return engines;
}

/** The stage, or undefined when it is off (nothing configured, or a problem already logged). */
export async function startTranscription(settings: Settings, log: Logger): Promise<Transcriber | undefined> {
  const t = settings.transcription;
  if (Object.keys(t.models).length === 0) {
    if (t.enabled) log.warn('transcription.enabled is true but transcription.models is empty: no voicemail is transcribed');
    return undefined;
  }
  let engines: Map<string, TranscriptionEngine>;
  try {
    engines = await checkTranscription(settings);
  } catch (err) {
    if (!(err instanceof TranscriptionError)) throw err;
    log.error({ setting: err.setting, err: err.message }, 'transcription is off for this run: voicemail is emailed without transcripts until this is fixed');
    return undefined;
  }
  log.info({ enabled: t.enabled, languages: [...engines].map(([language, e]) => `${language}: ${e.engine} ${e.model}`), concurrency: transcriptionConcurrency(t), maxSeconds: t.maxSeconds }, 'transcription ready');
  return new Transcriber({ settings: t, engines, voicemailConf: settings.spool.voicemailConf, serverConfs: new Map(settings.servers.map((s) => [s.name, s.spool.voicemailConf])), sox: settings.email.audioTool.command });
}
