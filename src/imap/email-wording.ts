/**
 * The words of a voicemail email: vmbridge's own subject and body lines, the transcript block,
 * the "forwarded or copied from" line, and the cleaning a template's body gets. No MIME here.
 */
import type { MailboxRef, SpoolFolder, SpoolMessage } from '../spool/types.js';
import { sanitizeText, type CallerId } from './caller-id.js';

/**
 * The mailbox a message was left for, when that is not the mailbox it is in now: Asterisk copies
 * a message's .txt byte for byte when it forwards it (VoiceMailMain, AMI VoicemailForward) and when
 * VoiceMail(a&b) leaves it for several mailboxes, so `origmailbox` still names the first mailbox.
 * Nothing in the spool tells a forward from such a copy; the email says "forwarded or copied".
 * origmailbox holds no context: the one of the mailbox it is in now is assumed for the name.
 */
export function originMailbox(ref: MailboxRef, message: SpoolMessage): MailboxRef | undefined {
  const orig = (message.envelope.origmailbox ?? '').split('@')[0]!.trim();
  if (orig === '' || orig.toLowerCase() === ref.mailbox.toLowerCase()) return undefined;
  return { context: ref.context, mailbox: orig };
}

/**
 * A transcript as the email carries it: first in the body under its heading, and in the
 * X-Asterisk-VM-Transcription header so IMAP SEARCH finds it; or one line saying why there is none.
 */
export type EmailTranscript =
  | { readonly text: string; readonly heading: string }
  /** `pending`: the transcript is still being made; the email carries TRANSCRIPT_STATE_HEADER: pending and is replaced later. */
  | { readonly note: string; readonly pending?: boolean };


/** Longest transcript in the body, in code points (the engine's text is untrusted). */
const TRANSCRIPT_BODY_MAX = 20_000;
/** Body lines of a transcript wrap at this many characters. */
const WRAP = 76;

/**
 * Longest free-text value (envelope fields, names from the configuration) that goes into a
 * header, in code points. Even all 4-byte characters, RFC 2047 encoded, then stay well inside
 * RFC 5322's 998-character line, which matters because the X- headers are never folded.
 */
export const FIELD_MAX = 100;

/** What a person calls each spool folder. */
const FOLDER_WORDS: Readonly<Record<SpoolFolder, string>> = {
  INBOX: 'New',
  Urgent: 'Urgent',
  Old: 'Old',
  Work: 'Work',
  Family: 'Family',
  Friends: 'Friends',
  Cust1: 'Custom 1',
  Cust2: 'Custom 2',
  Cust3: 'Custom 3',
  Cust4: 'Custom 4',
  Cust5: 'Custom 5',
  Deleted: 'Deleted',
};

export function folderWords(folder: SpoolFolder): string {
  return FOLDER_WORDS[folder];
}
/** `m:ss`, as Asterisk's `${VM_DUR}`. */
export function formatDuration(seconds: number): string {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** Whole seconds, or undefined when the envelope has no usable duration. */
export function durationOf(message: SpoolMessage): number | undefined {
  const d = message.envelope.duration;
  return d !== undefined && Number.isFinite(d) && d >= 0 ? Math.floor(d) : undefined;
}

export function isUrgent(message: SpoolMessage): boolean {
  return (message.envelope.flag ?? '').trim().toLowerCase() === 'urgent';
}

/** `Test Caller (5551234)`, `5551234`, `Test Caller`, or `an unknown caller` (Asterisk's words). */
function callerWords(caller: CallerId): string {
  if (caller.name && caller.number) return `${caller.name} (${caller.number})`;
  return caller.name || caller.number || 'an unknown caller';
}

/**
 * `Voicemail from Test Caller (5551234), 0:06`; `Urgent: ` in front for urgent messages; the
 * duration is left out when the envelope has none.
 */
export function voicemailSubject(caller: CallerId, durationSeconds: number | undefined, urgent: boolean): string {
  const duration = durationSeconds === undefined ? '' : `, ${formatDuration(durationSeconds)}`;
  return `${urgent ? 'Urgent: ' : ''}Voicemail from ${callerWords(caller)}${duration}`;
}

/** `The recording is attached: msg0000.wav (also msg0000.WAV, msg0000.gsm).` */
function attachmentSentence(names: readonly string[]): string {
  // attach=no in voicemail.conf: the voicemail is on the phone only.
  if (names.length === 0) return 'The recording is not attached; listen to it on the phone.';
  const [first = '', ...rest] = names;
  return `The recording is attached: ${first}${rest.length > 0 ? ` (also ${rest.join(', ')})` : ''}.`;
}

interface BodyFacts {
  caller: CallerId;
  received: string;
  duration: number | undefined;
  mailbox: string;
  folder: string;
  category: string;
  attachments: readonly string[];
  /** `1000 (Alice Example)`, for a message forwarded or copied from another mailbox. */
  origin?: string;
}

export function voicemailBody(f: BodyFacts): string {
  const lines = [
    `Caller: ${f.caller.name || 'unknown'}`,
    `Number: ${f.caller.number || 'unknown'}`,
    `Received: ${f.received}`,
    `Duration: ${f.duration === undefined ? 'unknown' : formatDuration(f.duration)}`,
    `Mailbox: ${f.mailbox}`,
    `Folder: ${f.folder}`,
  ];
  if (f.category) lines.push(`Category: ${f.category}`);
  if (f.origin) lines.push(`Forwarded or copied from: mailbox ${f.origin}`);
  lines.push('', attachmentSentence(f.attachments), '');
  return lines.join('\n');
}

/** Words joined into lines of at most `width` characters (a longer word gets a line of its own). */
function wrapWords(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** What goes before the rest of the body: the transcript under its heading, or its one-line note. */
export function transcriptBlock(t: EmailTranscript): string {
  if ('note' in t) return `${sanitizeText(t.note, FIELD_MAX * 2)}\n\n`;
  return `${sanitizeText(t.heading, FIELD_MAX)}\n${wrapWords(sanitizeText(t.text, TRANSCRIPT_BODY_MAX), WRAP)}\n\n`;
}

export function originWords(ref: MailboxRef, message: SpoolMessage, ownerName: ((ref: MailboxRef) => string | undefined) | undefined): { origin?: string } {
  const origin = originMailbox(ref, message);
  if (!origin) return {};
  const mailbox = sanitizeText(origin.mailbox, FIELD_MAX);
  const name = sanitizeText(ownerName?.(origin) ?? '', FIELD_MAX);
  return { origin: name === '' ? mailbox : `${mailbox} (${name})` };
}

/** The whole email, CRLF line ends, ready for IMAP APPEND. */
/** A template's body text: line breaks kept (any CR LF, CR or LF is one), tabs kept, every other control character dropped. */
export function templateBody(body: string): string {
  return body.replace(/\r\n?/g, '\n').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}
