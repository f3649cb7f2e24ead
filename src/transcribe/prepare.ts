/**
 * The one input every engine gets: 16 kHz mono 16-bit PCM WAV, made by SoX from the recording
 * (read as src/audio/formats.ts reads it), with the silence at both ends trimmed so the engine
 * spends no time on it.
 *
 * Phone recordings are 8 kHz: upsampled, they have nothing at all above 4 kHz, and a 16 kHz model
 * takes the logarithm of the energy there (PocketSphinx's filters reach 6.8 kHz), which is then
 * far below anything it was trained on. A faint noise floor (SoX's dither at 8-bit level, shaped
 * towards the high frequencies) keeps that band in range; measured on PocketSphinx's en-us model
 * it halves the word error rate of 8 kHz speech, and it is far below the speech itself.
 */
import { stat } from 'node:fs/promises';
import { TranscriptionError } from '../errors.js';
import { readableAs } from '../audio/formats.js';
import { runProgram } from './run.js';

/** Extensions whose recordings are 16 kHz already (Asterisk's wav16 and sln16). */
const WIDEBAND = new Set(['wav16', 'sln16']);

const WAV_16K = ['-t', 'wav', '-e', 'signed-integer', '-b', '16', '-c', '1'] as const;
// At least 0.1 s above 1% of full scale starts the speech; the same from the end (reversed) ends it.
// A short margin is put back: PocketSphinx finds utterances by the silence around them, and cut
// right at the first word it loses that word more often.
const TRIM = ['silence', '1', '0.1', '1%', 'reverse', 'silence', '1', '0.1', '1%', 'reverse', 'pad', '0.3', '0.3'] as const;
const NOISE_FLOOR = ['dither', '-s', '-p', '8'] as const;

/** Bytes of a 16 kHz mono 16-bit second, and of SoX's WAV header. */
const BYTES_PER_SECOND = 32_000;
const WAV_HEADER = 44;

export interface PreparedWav {
  readonly path: string;
  /** Seconds of audio left after trimming. */
  readonly seconds: number;
}

/**
 * Writes the WAV for `input` (a recording with extension `ext`) to `out`. -R: the same recording
 * always gives the same WAV (the dither is repeatable).
 */
export async function prepareWav(sox: string, input: Buffer, ext: string, out: string, signal: AbortSignal, nice = 0): Promise<PreparedWav> {
  const inputArgs = readableAs(ext);
  if (!inputArgs) throw new TranscriptionError(`${sox} cannot read .${ext} recordings; the voicemail is not transcribed`);
  const effects = [...TRIM, 'rate', '16000', ...(WIDEBAND.has(ext.toLowerCase()) ? [] : NOISE_FLOOR)];
  await runProgram(sox, ['-R', '-D', '-V1', ...inputArgs, '-', '--comment', '', ...WAV_16K, '-r', '16000', out, ...effects], { signal, input, nice });
  const size = (await stat(out)).size;
  return { path: out, seconds: Math.max(0, size - WAV_HEADER) / BYTES_PER_SECOND };
}
