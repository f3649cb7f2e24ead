/**
 * Runs in a process of its own (started by sherpa.ts under nice, killed when its time is up):
 * loads sherpa-onnx-node and the model, decodes one 16 kHz WAV, and prints
 * {"text": ...} on stdout. Argument 1: the recognizer's config as JSON; argument 2: the WAV.
 * A failure is one line on stderr and exit status 1.
 */
import { createRequire } from 'node:module';

interface Sherpa {
  OfflineRecognizer: new (config: unknown) => {
    createStream(): { acceptWaveform(w: { samples: Float32Array; sampleRate: number }): void };
    decode(stream: unknown): void;
    getResult(stream: unknown): { text?: string; lang?: string };
  };
  readWave(path: string): { samples: Float32Array; sampleRate: number };
}

const [configJson = '', wav = ''] = process.argv.slice(2);
try {
  // A native addon: loaded with require, as its package is written.
  const sherpa = createRequire(import.meta.url)('sherpa-onnx-node') as Sherpa;
  const recognizer = new sherpa.OfflineRecognizer(JSON.parse(configJson));
  const stream = recognizer.createStream();
  stream.acceptWaveform(sherpa.readWave(wav));
  recognizer.decode(stream);
  const result = recognizer.getResult(stream);
  process.stdout.write(`${JSON.stringify({ text: result.text ?? '', ...(result.lang ? { language: result.lang.replace(/[<|>]/g, '') } : {}) })}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
