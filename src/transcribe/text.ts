/**
 * What an engine printed, made safe for an email (it is untrusted: a model can emit control
 * characters, or a program anything at all), and the lines an email carries when there is no
 * transcript. Also the word error rate that the tests and docs/transcription.md measure.
 */
import { sanitizeText } from '../imap/caller-id.js';

/** One paragraph: no control characters, single spaces, at most `maxChars` code points. */
export function cleanTranscript(raw: string, maxChars: number): string {
  return sanitizeText(raw, maxChars);
}

/** Words for the error rate: lower case, letters, digits and apostrophes only. */
export function words(text: string): string[] {
  return text.toLowerCase().replace(/[^\p{L}\p{N}' ]+/gu, ' ').split(/\s+/).filter((w) => w !== '');
}

/**
 * Word error rate: (substitutions + deletions + insertions) / words of the reference, the edit
 * distance between the two word lists.
 */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const ref = words(reference);
  const hyp = words(hypothesis);
  if (ref.length === 0) return hyp.length === 0 ? 0 : 1;
  let row = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const next = [i];
    for (let j = 1; j <= hyp.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[hyp.length]! / ref.length;
}
