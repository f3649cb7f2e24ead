/**
 * voicemail.conf [general] charset=: the character set of the email's text part.
 *
 * Asterisk (make_email_file) labels the text part `Content-Type: text/plain; charset=<charset>`
 * with `Content-Transfer-Encoding: 8bit` and writes the body's bytes as it has them (the template
 * from voicemail.conf, the caller ID from the envelope): it converts nothing, so the label is right
 * only when those bytes are in that charset. vmbridge reads the configuration and the envelopes as
 * text (UTF-8, else ISO-8859-1), so it encodes the text in the named charset and labels it so: the
 * recipient reads the text Asterisk meant. A text the charset cannot hold, or a charset that is not
 * known or cannot carry mail text, is sent as UTF-8 instead, never with characters lost.
 */
import iconv from 'iconv-lite';

export type BodyCharset =
  /** The text in `label`'s bytes. */
  | { readonly label: string; readonly bytes: Buffer }
  /** Send the text as UTF-8, for this reason (`charset=X ...`). */
  | { readonly fallback: string };

/** Letters, digits and the other characters RFC 2978 allows in a charset name. */
const CHARSET_NAME = /^[A-Za-z0-9!#$%&'+^_`{}~.-]{1,40}$/;

/** Names iconv-lite knows that are no character set a mail client reads. */
const NOT_MAIL_CHARSETS = new Set(['binary', 'base64', 'hex', 'cesu8', 'utf7imap']);

/**
 * What every charset mail text can be written in shares with ASCII: line ends, tab, space, letters,
 * digits and punctuation (backslash and tilde left out: some Japanese tables give them other
 * glyphs). A charset that writes these otherwise (UTF-16, UTF-7, EBCDIC) cannot carry MIME text.
 */
const ASCII_PROBE = ((): string => {
  let s = '\r\n\t';
  for (let c = 0x20; c < 0x7f; c++) if (c !== 0x5c && c !== 0x7e) s += String.fromCharCode(c);
  return s;
})();

const usable = new Map<string, string | undefined>();

/** Why `charset` cannot label a mail body, or undefined when it can. */
function unusable(charset: string): string | undefined {
  const key = charset.toLowerCase();
  if (!usable.has(key)) {
    let why: string | undefined;
    if (!CHARSET_NAME.test(charset)) why = `charset=${JSON.stringify(charset)} is not a character set name`;
    else if (NOT_MAIL_CHARSETS.has(key.replace(/[-_]/g, '')) || !iconv.encodingExists(charset)) why = `charset=${charset} is not a character set vmbridge knows`;
    else if (!iconv.encode(ASCII_PROBE, charset).equals(Buffer.from(ASCII_PROBE, 'latin1'))) why = `charset=${charset} does not write plain letters and line ends as ASCII does, so mail text cannot be sent in it`;
    usable.set(key, why);
  }
  return usable.get(key);
}

/** Whether `charset` is UTF-8 under one of its names (then the body stays as vmbridge writes it). */
export function isUtf8(charset: string): boolean {
  return /^utf-?8$/i.test(charset);
}

/** The text in `charset`, or why it goes as UTF-8. */
export function encodeBody(text: string, charset: string): BodyCharset {
  const why = unusable(charset);
  if (why !== undefined) return { fallback: why };
  const bytes = iconv.encode(text, charset);
  // iconv-lite puts a substitute for what the charset lacks; the text read back shows it.
  if (iconv.decode(bytes, charset) !== text) {
    const lost = [...text].find((ch) => iconv.decode(iconv.encode(ch, charset), charset) !== ch) ?? '';
    const shown = lost === '' ? '' : ` (${JSON.stringify(lost)}, U+${lost.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
    return { fallback: `charset=${charset} cannot hold every character of the email's text${shown}` };
  }
  return { label: charset, bytes };
}
