/**
 * Builds the email that stands for one voicemail in IMAP: the MIME assembly. The words are in
 * email-wording.ts, the dates in email-dates.ts, the header lines vmbridge writes past nodemailer
 * in email-headers.ts.
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
import type MimeNode from 'nodemailer/lib/mime-node/index.js';
import { audioContentType } from '../audio/formats.js';
import type { PreparedAttachment } from '../audio/attachments.js';
import { renderLook, type EmailLook } from '../email/asterisk-look.js';
import { encodeBody, isUtf8 } from '../email/body-charset.js';
import { SpoolError } from '../errors.js';
import type { AudioFile, MailboxRef, SpoolMessage } from '../spool/types.js';
import { parseCallerId, sanitizeText } from './caller-id.js';
import { asteriskDate, humanDate, originTime, rfc5322Date } from './email-dates.js';
import { headerLine, insertHeaderLines, TRANSCRIPT_STATE_HEADER, transcriptHeaderLine } from './email-headers.js';
import {
  durationOf, FIELD_MAX, folderWords, isUrgent, originWords, templateBody, transcriptBlock, voicemailBody, voicemailSubject,
  type EmailTranscript,
} from './email-wording.js';
import { identityMessageId } from './identity-header.js';
import { mimeBytes } from './mime-bytes.js';

export { asteriskDate, humanDate, rfc5322Date } from './email-dates.js';
export { TRANSCRIPT_STATE_HEADER, transcriptHeaderLine } from './email-headers.js';
export { folderWords, formatDuration, isUrgent, originMailbox, voicemailBody, voicemailSubject, type EmailTranscript } from './email-wording.js';
export { audioContentType } from '../audio/formats.js';

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
  /**
   * Value of X-Asterisk-VM-Extension: the mailbox's imapvmshareid= where it has one, as Asterisk's
   * IMAP storage writes it (so that Asterisk finds the email should the site go back). Absent: the
   * mailbox number.
   */
  asteriskExtension?: string;
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
  /**
   * voicemail.conf charset=: the text part is written in it and labelled so (src/email/body-charset.ts).
   * Absent, or UTF-8: UTF-8.
   */
  charset?: string;
  /** Told why the text part went as UTF-8 although `charset` names another. */
  onCharsetFallback?: (why: string) => void;
  /** Told what the templates use that vmbridge cannot evaluate (dialplan functions, expressions, escapes). */
  onTemplateProblem?: (problems: readonly string[]) => void;
  /** The machine transcript (src/transcribe/), or the one line saying why there is none. Absent: not transcribed. */
  transcript?: EmailTranscript;
  /** The full name of another mailbox in voicemail.conf, for a message forwarded or copied from it. */
  ownerName?: (ref: MailboxRef) => string | undefined;
}


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
  if (input.charset !== undefined && !isUtf8(input.charset)) inCharset(root, text.replace(/\r?\n/g, '\r\n'), input.charset, input.onCharsetFallback);
  const raw = mimeBytes(root) ?? await root.build();

  const xHeaders: Array<[string, string]> = [
    ['X-Asterisk-VM-Message-Num', String(message.msgnum + 1)],
    ['X-Asterisk-VM-Server-Name', sanitizeText(input.serverName, FIELD_MAX)],
    ['X-Asterisk-VM-Context', ref.context],
    ['X-Asterisk-VM-Extension', input.asteriskExtension ?? ref.mailbox],
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

/**
 * Writes the text part in `charset` with that label, as Asterisk labels it; when the charset cannot
 * hold the text (or is no charset for mail), the part stays UTF-8 and `onFallback` is told why.
 */
function inCharset(root: MimeNode, text: string, charset: string, onFallback: ((why: string) => void) | undefined): void {
  const encoded = encodeBody(text, charset);
  if ('fallback' in encoded) {
    onFallback?.(encoded.fallback);
    return;
  }
  const part = textPart(root);
  if (!part) throw new Error('voicemail email: no text part in the composed message');
  part.setContent(encoded.bytes);
  part.setHeader('Content-Type', `text/plain; charset=${encoded.label}`);
}

/** The text/plain node that is not an attachment: the root itself when nothing is attached. */
function textPart(node: MimeNode): MimeNode | undefined {
  const type = String(node.getHeader('Content-Type') ?? '').toLowerCase();
  if (type.startsWith('text/plain') && !node.filename) return node;
  for (const child of node.childNodes) {
    const found = textPart(child);
    if (found) return found;
  }
  return undefined;
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

