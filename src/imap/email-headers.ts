/**
 * The header lines vmbridge writes itself, past nodemailer: the X-Asterisk-VM-* block as Asterisk's
 * IMAP storage writes it (every line present, never folded) and the transcript headers.
 */
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { sanitizeText } from './caller-id.js';

/**
 * Marks an email whose transcript is still being made. Its replacement (same Message-ID) lacks it,
 * so of two copies of one identity the plan keeps the one without it (docs/sync.md).
 */
export const TRANSCRIPT_STATE_HEADER = 'X-VMBridge-Transcript';

export const TRANSCRIPT_HEADER = 'X-Asterisk-VM-Transcription';
/** RFC 5322's limit for a line, which the never-folded X- headers must keep. */
const LINE_MAX = 998;

/**
 * One node does all the header encoding: the static MimeNode.encodeHeaderValue builds a whole node
 * (random boundary included) for every call, and an email has fourteen X- headers.
 */
const headerEncoder = new MimeNode();

/** Encodes one X- header line as Asterisk writes it: present even when empty, never folded. */
export function headerLine(name: string, value: string): string {
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
export function insertHeaderLines(raw: Buffer, lines: readonly string[]): Buffer {
  const headerEnd = raw.indexOf('\r\n\r\n');
  const anchor = raw.indexOf('\r\nMIME-Version:');
  if (headerEnd < 0 || anchor < 0 || anchor > headerEnd) {
    throw new Error('voicemail email: MIME-Version header not found in the composed message');
  }
  const inserted = Buffer.from(lines.map((line) => `\r\n${line}`).join(''), 'utf8');
  return Buffer.concat([raw.subarray(0, anchor), inserted, raw.subarray(anchor)]);
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

