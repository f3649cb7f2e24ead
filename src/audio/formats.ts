/**
 * Which audio a voicemail email carries, decided from what the spool holds. Pure: no I/O here.
 *
 * MP3 is the one format every mail client plays (Outlook on every platform, Apple Mail, Gmail on
 * the web and Android, Thunderbird); GSM-in-WAV (Asterisk's wav49) fails in Chromium-based
 * webmail, Gecko, Android and Outlook mobile, and PCM WAV is ten times the size of MP3 and fails
 * in Outlook mobile's viewer. So the default is one MP3 made from the best recording there is.
 * See docs/attachments.md.
 */
import type { AudioFile } from '../spool/types.js';

export const AUDIO_MODES = ['mp3', 'wav', 'original', 'original+mp3'] as const;
/**
 * - mp3: one MP3 made from the best recording the spool has;
 * - wav: one PCM WAV (the spool's own `wav` when there is one, else made from the best recording);
 * - original: the recording as Asterisk attaches it (attachfmt, else the first of format=);
 * - original+mp3: both.
 */
export type AudioMode = (typeof AUDIO_MODES)[number];

/** What a mailbox's email carries: from vmbridge's settings and the mailbox's voicemail.conf. */
export interface AttachmentPolicy {
  /** voicemail.conf attach= (the mailbox's, else [general]'s); false: an email without audio. */
  readonly attach: boolean;
  readonly mode: AudioMode;
  /** voicemail.conf attachfmt=, as written (e.g. wav49, gsm). */
  readonly attachfmt?: string;
  /** voicemail.conf format=, in order, as written. */
  readonly formats: readonly string[];
  /** voicemail.conf volgain=: the gain made MP3 and WAV attachments get (SoX -v); recordings attached as they are keep theirs. */
  readonly volgain?: number;
}

/** One attachment to make: a file as it is, or a conversion of one. */
export type AttachmentStep =
  | { readonly kind: 'file'; readonly file: AudioFile }
  | { readonly kind: 'convert'; readonly to: 'mp3' | 'wav'; readonly from: AudioFile };

/** How the audio tool reads a recording, by its extension as on disk; lower rank is better audio. */
interface Readable {
  readonly rank: number;
  readonly args: readonly string[];
}

const RAW_8K = ['-r', '8000', '-c', '1'] as const;
const SLIN = ['-t', 'raw', '-e', 'signed-integer', '-b', '16', '-L', '-c', '1'] as const;

// Case matters for one pair only: `wav` is PCM, `WAV` is wav49 (GSM 6.10 in a RIFF WAVE).
const READABLE: Readonly<Record<string, Readable>> = {
  wav16: { rank: 0, args: ['-t', 'wav'] },
  sln16: { rank: 1, args: [...SLIN, '-r', '16000'] },
  wav: { rank: 2, args: ['-t', 'wav'] },
  sln: { rank: 3, args: [...SLIN, '-r', '8000'] },
  raw: { rank: 3, args: [...SLIN, '-r', '8000'] },
  ulaw: { rank: 4, args: ['-t', 'ul', ...RAW_8K] },
  ul: { rank: 4, args: ['-t', 'ul', ...RAW_8K] },
  mu: { rank: 4, args: ['-t', 'ul', ...RAW_8K] },
  pcm: { rank: 4, args: ['-t', 'ul', ...RAW_8K] },
  alaw: { rank: 4, args: ['-t', 'al', ...RAW_8K] },
  al: { rank: 4, args: ['-t', 'al', ...RAW_8K] },
  WAV: { rank: 5, args: ['-t', 'wav'] },
  wav49: { rank: 5, args: ['-t', 'wav'] },
  gsm: { rank: 6, args: ['-t', 'gsm', ...RAW_8K] },
};

/** The audio tool's input options for a recording with this extension, or undefined if it cannot read it. */
export function readableAs(ext: string): readonly string[] | undefined {
  return (READABLE[ext] ?? (ext === 'WAV' ? undefined : READABLE[ext.toLowerCase()]))?.args;
}

function rankOf(ext: string): number | undefined {
  return (READABLE[ext] ?? READABLE[ext.toLowerCase()])?.rank;
}

/** The extension Asterisk gives a format's file: the name as written, except wav49 is `WAV`. */
export function extensionOf(format: string): string {
  const f = format.trim();
  return f.toLowerCase() === 'wav49' ? 'WAV' : f;
}

/** The recording with the best audio the tool can read, if any. */
export function bestSource(audio: readonly AudioFile[]): AudioFile | undefined {
  let best: { file: AudioFile; rank: number } | undefined;
  for (const file of audio) {
    const rank = rankOf(file.ext);
    if (rank === undefined) continue;
    if (!best || rank < best.rank || (rank === best.rank && file.ext < best.file.ext)) best = { file, rank };
  }
  return best?.file;
}

/**
 * The recording Asterisk would attach (make_email_file with attachfmt): attachfmt when the message
 * has it, else the first format of format= that it has, else the first by name.
 */
export function asteriskAttachment(policy: Pick<AttachmentPolicy, 'attachfmt' | 'formats'>, audio: readonly AudioFile[]): AudioFile | undefined {
  const byExt = (ext: string): AudioFile | undefined => audio.find((a) => a.ext === ext);
  if (policy.attachfmt) {
    const hit = byExt(extensionOf(policy.attachfmt));
    if (hit) return hit;
  }
  for (const format of policy.formats) {
    const hit = byExt(extensionOf(format));
    if (hit) return hit;
  }
  return [...audio].sort((a, b) => (a.ext < b.ext ? -1 : a.ext > b.ext ? 1 : 0))[0];
}

/** The attachments to make for a message, in order. Empty when the mailbox says attach=no. */
export function planAttachments(policy: AttachmentPolicy, audio: readonly AudioFile[]): AttachmentStep[] {
  if (!policy.attach || audio.length === 0) return [];
  const original = asteriskAttachment(policy, audio);
  const source = bestSource(audio);
  const mp3 = (): AttachmentStep[] => (source ? [{ kind: 'convert', to: 'mp3', from: source }] : original ? [{ kind: 'file', file: original }] : []);
  switch (policy.mode) {
    case 'mp3':
      return mp3();
    case 'wav': {
      const pcm = audio.find((a) => a.ext === 'wav');
      if (pcm) return [{ kind: 'file', file: pcm }];
      if (source) return [{ kind: 'convert', to: 'wav', from: source }];
      return original ? [{ kind: 'file', file: original }] : [];
    }
    case 'original':
      return original ? [{ kind: 'file', file: original }] : [];
    case 'original+mp3': {
      const steps: AttachmentStep[] = original ? [{ kind: 'file', file: original }] : [];
      if (source) steps.push({ kind: 'convert', to: 'mp3', from: source });
      return steps;
    }
  }
}

/**
 * Content types mail clients play, by spool extension. `WAV` (wav49: GSM 6.10 inside a WAV
 * container) is a WAV file as far as a client can tell, so it gets `audio/wav` as well.
 */
const AUDIO_TYPES: Readonly<Record<string, string>> = {
  wav: 'audio/wav',
  wav16: 'audio/wav',
  wav49: 'audio/wav',
  gsm: 'audio/x-gsm',
  ulaw: 'audio/basic',
  ulw: 'audio/basic',
  ul: 'audio/basic',
  mu: 'audio/basic',
  pcm: 'audio/basic',
  alaw: 'audio/x-alaw-basic',
  alw: 'audio/x-alaw-basic',
  al: 'audio/x-alaw-basic',
  g722: 'audio/G722',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

export function audioContentType(ext: string): string {
  return AUDIO_TYPES[ext.toLowerCase()] ?? 'application/octet-stream';
}
