/**
 * Builds the email that stands for one voicemail in IMAP.
 *
 * The email is meant to be read at a glance (subject and a few short body lines: caller, number,
 * when, how long), carries every recording of the message as an attachment, and has the
 * `X-Asterisk-VM-*` headers that Asterisk's own IMAP storage writes, in Asterisk's order, so
 * tools that know those headers keep working.
 *
 * The output is a pure function of the input: the Date comes from the envelope and the
 * Message-ID and MIME boundary from the message's identity, so building the same voicemail
 * twice gives the same bytes.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { MailComposerAttachment } from 'nodemailer/lib/mail-composer/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { audioContentType } from '../audio/formats.js';
import type { PreparedAttachment } from '../audio/attachments.js';
import { renderLook, type EmailLook } from '../email/asterisk-look.js';
import { SpoolError } from '../errors.js';
import type { AudioFile, MailboxRef, SpoolFolder, SpoolMessage } from '../spool/types.js';
import { parseCallerId, sanitizeText } from './caller-id.js';
import type { CallerId } from './caller-id.js';
import { identityMessageId } from './identity-header.js';
import { mimeBytes } from './mime-bytes.js';

export interface VoicemailEmailInput {
  /** The mailbox the message belongs to (`mailbox@context`). */
  ref: MailboxRef;
  message: SpoolMessage;
  /** From voicemail.conf. */
  owner: { fullName: string; email: string };
  /** IANA time zone for the dates a person reads (the mailbox's tz, or the default). */
  timezone: string;
  /** The From header, e.g. `"Voicemail" <voicemail@example.org>`. */
  from: string;
  /** Value of X-Asterisk-VM-Server-Name (Asterisk writes its `fromstring` there). */
  serverName: string;
  /** Domain of the identity Message-ID. */
  messageIdDomain: string;
  readAudio: (path: string) => Promise<Buffer>;
  /**
   * The audio to attach, made for the mailbox's policy (src/audio/attachments.ts); empty for
   * attach=no. Absent: every recorded format as it is.
   */
  attachments?: readonly PreparedAttachment[];
  /** voicemail.conf's email options (src/email/asterisk-look.ts); absent: vmbridge's own From, Subject and body. */
  look?: EmailLook;
  /** The host name an Asterisk-style From without a domain gets (serveremail=asterisk). */
  hostname?: string;
  /** Told what the templates use that vmbridge cannot evaluate (dialplan functions, expressions, escapes). */
  onTemplateProblem?: (problems: readonly string[]) => void;
  /** The machine transcript (src/transcribe/), or the one line saying why there is none. Absent: not transcribed. */
  transcript?: EmailTranscript;
  /** The full name of another mailbox in voicemail.conf, for a message forwarded or copied from it. */
  ownerName?: (ref: MailboxRef) => string | undefined;
}

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

/**
 * Marks an email whose transcript is still being made. Its replacement (same Message-ID) lacks it,
 * so of two copies of one identity the plan keeps the one without it (docs/sync.md).
 */
export const TRANSCRIPT_STATE_HEADER = 'X-VMBridge-Transcript';

/** Longest transcript in the body, in code points (the engine's text is untrusted). */
const TRANSCRIPT_BODY_MAX = 20_000;
/** Body lines of a transcript wrap at this many characters. */
const WRAP = 76;
const TRANSCRIPT_HEADER = 'X-Asterisk-VM-Transcription';
/** RFC 5322's limit for a line, which the never-folded X- headers must keep. */
const LINE_MAX = 998;

/**
 * Longest free-text value (envelope fields, names from the configuration) that goes into a
 * header, in code points. Even all 4-byte characters, RFC 2047 encoded, then stay well inside
 * RFC 5322's 998-character line, which matters because the X- headers are never folded.
 */
const FIELD_MAX = 100;

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

export { audioContentType } from '../audio/formats.js';

/** Plain PCM WAV plays everywhere, so it comes first; then wav49, then the rest. */
function audioRank(ext: string): number {
  if (ext === 'wav' || ext === 'wav16') return 0;
  if (ext.toLowerCase() === 'wav' || ext.toLowerCase() === 'wav49') return 1;
  return 2;
}

/** The audio files in attachment order. Ties are broken by extension so the order never depends on how the directory was listed. */
export function orderAudio(audio: readonly AudioFile[]): AudioFile[] {
  return [...audio].sort((a, b) => audioRank(a.ext) - audioRank(b.ext) || (a.ext < b.ext ? -1 : a.ext > b.ext ? 1 : 0));
}

/** `m:ss`, as Asterisk's `${VM_DUR}`. */
export function formatDuration(seconds: number): string {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** Whole seconds, or undefined when the envelope has no usable duration. */
function durationOf(message: SpoolMessage): number | undefined {
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

// ---------------------------------------------------------------------------------------------
// Dates. Intl gives the wall clock in the mailbox's zone; the words are fixed English, because
// RFC 5322 and Asterisk's emaildateformat (`%A, %B %d, %Y at %r` in the C locale) require them.

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
] as const;

interface WallClock {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number; // 0-23
  minute: number;
  second: number;
  weekday: string;
  monthName: string;
  /** Minutes east of UTC. */
  offset: number;
}

const clockFormats = new Map<string, Intl.DateTimeFormat>();

function clockFormat(timeZone: string): Intl.DateTimeFormat {
  let format = clockFormats.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric', month: 'numeric', day: 'numeric',
        hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23',
      });
    } catch (cause) {
      throw new RangeError(`time zone ${JSON.stringify(timeZone)} is not a known IANA time zone`, { cause });
    }
    clockFormats.set(timeZone, format);
  }
  return format;
}

/**
 * Offsets from UTC by zone and quarter hour. Working out a wall clock with Intl is slow (about a
 * tenth of a millisecond), and an import builds thousands of emails from a few hours of calls; every
 * zone changes its offset only on a quarter hour, so the offset of one quarter holds for all of it.
 */
const offsets = new Map<string, number>();
const OFFSETS_MAX = 10_000;
const QUARTER_HOUR = 900;

function offsetMinutes(epochSeconds: number, timeZone: string): number {
  const key = `${timeZone}\0${Math.floor(epochSeconds / QUARTER_HOUR)}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    offset = computeWallClock(epochSeconds, timeZone).offset;
    if (offsets.size >= OFFSETS_MAX) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

function wallClock(epochSeconds: number, timeZone: string): WallClock {
  const offset = offsetMinutes(epochSeconds, timeZone);
  const local = new Date((Math.floor(epochSeconds) + offset * 60) * 1000);
  const month = local.getUTCMonth() + 1;
  return {
    year: local.getUTCFullYear(),
    month,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    weekday: DAYS[local.getUTCDay()] ?? '',
    monthName: MONTHS[month - 1] ?? '',
    offset,
  };
}

function computeWallClock(epochSeconds: number, timeZone: string): WallClock {
  const ms = epochSeconds * 1000;
  const parts: Record<string, number> = {};
  for (const part of clockFormat(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const year = parts['year'] ?? 1970;
  const month = parts['month'] ?? 1;
  const day = parts['day'] ?? 1;
  const hour = parts['hour'] ?? 0;
  const minute = parts['minute'] ?? 0;
  const second = parts['second'] ?? 0;
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  return {
    year, month, day, hour, minute, second,
    weekday: DAYS[new Date(asUtc).getUTCDay()] ?? '',
    monthName: MONTHS[month - 1] ?? '',
    offset: Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000),
  };
}

const two = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 date in the mailbox's zone, as Asterisk writes its Date header: `Sun, 22 Nov 2026 11:32:30 +0000`. */
export function rfc5322Date(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  const sign = c.offset < 0 ? '-' : '+';
  const abs = Math.abs(c.offset);
  return `${c.weekday.slice(0, 3)}, ${two(c.day)} ${c.monthName.slice(0, 3)} ${c.year} ` +
    `${two(c.hour)}:${two(c.minute)}:${two(c.second)} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** Asterisk's default emaildateformat `%A, %B %d, %Y at %r`: `Sunday, November 22, 2026 at 11:32:30 AM`. */
export function asteriskDate(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  const hour12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
  return `${c.weekday}, ${c.monthName} ${two(c.day)}, ${c.year} at ` +
    `${two(hour12)}:${two(c.minute)}:${two(c.second)} ${c.hour < 12 ? 'AM' : 'PM'}`;
}

/** The date a person reads in the body (British order, 24-hour clock, zone named): `Sunday, 22 November 2026, 11:32:30 (UTC)`. */
export function humanDate(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  return `${c.weekday}, ${c.day} ${c.monthName} ${c.year}, ${two(c.hour)}:${two(c.minute)}:${two(c.second)} (${timeZone})`;
}

/** Largest epoch second a JavaScript Date can hold. */
const MAX_EPOCH_SECONDS = 8.64e12;

/**
 * When the message was left. The envelope's origtime; failing that the time at the front of the
 * msg_id (Asterisk builds it from the same clock). Never "now": the email must not change
 * between builds.
 */
function originTime(message: SpoolMessage): number {
  const t = message.envelope.origtime;
  if (t !== undefined && Number.isSafeInteger(t) && t >= 0 && t <= MAX_EPOCH_SECONDS) return t;
  const fromId = /^(\d{1,12})-[0-9a-fA-F]{8}$/.exec(message.envelope.msgId ?? '');
  if (fromId?.[1] !== undefined) return Number(fromId[1]);
  throw new SpoolError(message.txtPath, 'has no usable origtime (and no msg_id to take the time from), so the voicemail has no date');
}

// ---------------------------------------------------------------------------------------------

/** The first address of voicemail.conf's email field (it may list several, separated by `|`). */
function firstAddress(email: string): string {
  return sanitizeText(email.split('|').map((a) => a.trim()).find((a) => a !== '') ?? '', FIELD_MAX);
}

/**
 * The To address. A mailbox without an email in voicemail.conf still gets a well-formed To:
 * `<mailbox>@<messageIdDomain>`. The message is only ever APPENDed, never sent, so this
 * address is for display and is never delivered to.
 */
function recipient(input: VoicemailEmailInput): { name: string; address: string } {
  const email = firstAddress(input.owner.email);
  return {
    name: sanitizeText(input.owner.fullName, FIELD_MAX),
    address: email.includes('@') ? email : `${input.ref.mailbox}@${input.messageIdDomain}`,
  };
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

/**
 * One node does all the header encoding: the static MimeNode.encodeHeaderValue builds a whole node
 * (random boundary included) for every call, and an email has fourteen X- headers.
 */
const headerEncoder = new MimeNode();

/** Encodes one X- header line as Asterisk writes it: present even when empty, never folded. */
function headerLine(name: string, value: string): string {
  // Asterisk reads these back with exactly one space after the colon and no unfolding
  // (get_header_by_tag), so they stay on one line. Values are bounded, so the line stays far
  // below RFC 5322's 998 characters even with RFC 2047 encoding.
  return `${name}: ${value === '' ? '' : headerEncoder.encodeHeaderValue(name, value)}`;
}

/**
 * Puts the X- header lines right before MIME-Version, where Asterisk has them. nodemailer
 * cannot write them itself: it drops empty headers (Asterisk writes `X-Asterisk-VM-Flag: `
 * for a normal message) and folds at 76 characters.
 */
function insertHeaderLines(raw: Buffer, lines: readonly string[]): Buffer {
  const headerEnd = raw.indexOf('\r\n\r\n');
  const anchor = raw.indexOf('\r\nMIME-Version:');
  if (headerEnd < 0 || anchor < 0 || anchor > headerEnd) {
    throw new Error('voicemail email: MIME-Version header not found in the composed message');
  }
  const inserted = Buffer.from(lines.map((line) => `\r\n${line}`).join(''), 'utf8');
  return Buffer.concat([raw.subarray(0, anchor), inserted, raw.subarray(anchor)]);
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
function transcriptBlock(t: EmailTranscript): string {
  if ('note' in t) return `${sanitizeText(t.note, FIELD_MAX * 2)}\n\n`;
  return `${sanitizeText(t.heading, FIELD_MAX)}\n${wrapWords(sanitizeText(t.text, TRANSCRIPT_BODY_MAX), WRAP)}\n\n`;
}

/**
 * The transcript header line: one line, cleaned, and as much of the text as fits in LINE_MAX once
 * RFC 2047 encoded (a text of 4-byte characters encodes to several times its length).
 */
export function transcriptHeaderLine(text: string): string {
  let max = 600;
  let line = headerLine(TRANSCRIPT_HEADER, sanitizeText(text, max));
  while (line.length > LINE_MAX && max > 0) {
    max = Math.floor(max * 0.8);
    line = headerLine(TRANSCRIPT_HEADER, sanitizeText(text, max));
  }
  return line;
}

function originWords(ref: MailboxRef, message: SpoolMessage, ownerName: VoicemailEmailInput['ownerName']): { origin?: string } {
  const origin = originMailbox(ref, message);
  if (!origin) return {};
  const mailbox = sanitizeText(origin.mailbox, FIELD_MAX);
  const name = sanitizeText(ownerName?.(origin) ?? '', FIELD_MAX);
  return { origin: name === '' ? mailbox : `${mailbox} (${name})` };
}

/** The whole email, CRLF line ends, ready for IMAP APPEND. */
export async function buildVoicemailEmail(input: VoicemailEmailInput): Promise<Buffer> {
  const { ref, message, timezone } = input;
  if (message.audio.length === 0) {
    throw new SpoolError(message.txtPath, 'the message has no audio file, so there is no recording to attach');
  }
  const messageId = identityMessageId(ref, message.id, input.messageIdDomain);
  const origtime = originTime(message);
  const duration = durationOf(message);
  const urgent = isUrgent(message);
  const caller = parseCallerId(message.envelope.callerid);
  const envelopeText = (value: string | undefined): string => sanitizeText(value, FIELD_MAX);
  const to = recipient(input);

  const prepared = input.attachments ?? await everyRecording(message, input.readAudio);
  const attachments: MailComposerAttachment[] = prepared.map((a) => ({
    filename: sanitizeText(a.filename, FIELD_MAX),
    content: a.content,
    contentType: a.contentType,
    contentDisposition: 'attachment',
    headers: { 'Content-Description': 'Voicemail sound attachment.' },
  }));
  const attachmentNames = attachments.map((a) => (typeof a.filename === 'string' ? a.filename : ''));

  const look = input.look ? renderLook(input.look, {
    fullName: sanitizeText(input.owner.fullName, FIELD_MAX),
    context: ref.context,
    mailbox: ref.mailbox,
    msgnum: message.msgnum + 1,
    durationSeconds: duration,
    cidName: caller.name,
    cidNum: caller.number,
    callerid: sanitizeText(message.envelope.callerid, FIELD_MAX),
    category: envelopeText(message.envelope.category),
    flag: envelopeText(message.envelope.flag),
    origtime,
    timezone,
    messageFile: message.txtPath.replace(/\.txt$/, ''),
  }, input.hostname ?? 'localhost') : undefined;
  const templateProblems = look ? [...look.unsupported, ...look.droppedEscapes.map((e) => `escape ${e}`)] : [];
  if (templateProblems.length > 0) input.onTemplateProblem?.(templateProblems);

  const mailboxWords = [sanitizeText(input.owner.fullName, FIELD_MAX), `${ref.mailbox}@${ref.context}`]
    .filter((s) => s !== '').join(' ');
  const body = look?.body !== undefined ? templateBody(look.body) : voicemailBody({
    caller,
    received: humanDate(origtime, timezone),
    duration,
    mailbox: mailboxWords,
    folder: folderWords(message.folder),
    category: envelopeText(message.envelope.category),
    attachments: attachmentNames,
    ...originWords(ref, message, input.ownerName),
  });
  const text = input.transcript ? `${transcriptBlock(input.transcript)}${body}` : body;

  const date = rfc5322Date(origtime, timezone);
  const composer = new MailComposer({
    // Listed first so the root starts with Date, as Asterisk's mails do; `date` below sets the
    // same value in place.
    headers: [{ key: 'Date', value: date }],
    date,
    from: look?.from ? { name: sanitizeText(look.from.name, FIELD_MAX), address: sanitizeText(look.from.address, FIELD_MAX) } : sanitizeText(input.from),
    to,
    // One line whatever the template holds: its \n and the caller's CR/LF become spaces.
    subject: look?.subject !== undefined ? sanitizeText(look.subject, 998 - 'Subject: '.length) : voicemailSubject(caller, duration, urgent),
    messageId,
    text: text.replace(/\r?\n/g, '\r\n'),
    attachments,
    // Everything nodemailer would otherwise pick at random comes from the identity, so the
    // same voicemail always gives the same bytes.
    baseBoundary: createHash('sha256').update(messageId).digest('hex').slice(0, 24),
    boundaryPrefix: '--_vmbridge',
    // nodemailer writes CRLF itself; no newline option, so no byte-by-byte LF-to-CRLF pass over the audio.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const root = composer.compile();
  const raw = mimeBytes(root) ?? await root.build();

  const xHeaders: Array<[string, string]> = [
    ['X-Asterisk-VM-Message-Num', String(message.msgnum + 1)],
    ['X-Asterisk-VM-Server-Name', sanitizeText(input.serverName, FIELD_MAX)],
    ['X-Asterisk-VM-Context', ref.context],
    ['X-Asterisk-VM-Extension', ref.mailbox],
    ['X-Asterisk-VM-Flag', envelopeText(message.envelope.flag)],
    ['X-Asterisk-VM-Priority', envelopeText(message.envelope.priority)],
    ['X-Asterisk-VM-Caller-ID-Num', caller.number],
    ['X-Asterisk-VM-Caller-ID-Name', caller.name],
    ['X-Asterisk-VM-Duration', duration === undefined ? '' : String(duration)],
    ['X-Asterisk-VM-Category', envelopeText(message.envelope.category)],
    ['X-Asterisk-VM-Message-Type', 'Message'],
    ['X-Asterisk-VM-Orig-date', asteriskDate(origtime, timezone)],
    ['X-Asterisk-VM-Orig-time', String(origtime)],
    ['X-Asterisk-VM-Message-ID', envelopeText(message.id)],
  ];
  // Asterisk writes these two only when it has a value.
  if (caller.number) xHeaders.push(['X-Asterisk-CallerID', caller.number]);
  if (caller.name) xHeaders.push(['X-Asterisk-CallerIDName', caller.name]);

  const lines = xHeaders.map(([name, value]) => headerLine(name, sanitizeText(value)));
  if (input.transcript && 'text' in input.transcript && sanitizeText(input.transcript.text) !== '') lines.push(transcriptHeaderLine(input.transcript.text));
  if (input.transcript && 'note' in input.transcript && input.transcript.pending) lines.push(headerLine(TRANSCRIPT_STATE_HEADER, 'pending'));
  return insertHeaderLines(raw, lines);
}

/** Every recorded format as it is, in attachment order. */
async function everyRecording(message: SpoolMessage, readAudio: (path: string) => Promise<Buffer>): Promise<PreparedAttachment[]> {
  const out: PreparedAttachment[] = [];
  for (const file of orderAudio(message.audio)) {
    let content: Buffer;
    try {
      content = await readAudio(file.path);
    } catch (cause) {
      // A store's own error already names what it could not read (a table row, say).
      if (cause instanceof SpoolError) throw cause;
      throw new SpoolError(file.path, 'could not read the recording', { cause });
    }
    // The name as on disk (`msg0000.WAV` keeps its case, as Asterisk names wav49).
    out.push({ filename: posix.basename(file.path), content, contentType: audioContentType(file.ext) });
  }
  return out;
}

/** A template's body text: line breaks kept (any CR LF, CR or LF is one), tabs kept, every other control character dropped. */
function templateBody(body: string): string {
  return body.replace(/\r\n?/g, '\n').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}
