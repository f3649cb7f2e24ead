/**
 * Caller id as Asterisk writes it into `msgNNNN.txt` (`ast_callerid_merge`): `"Name" <num>`,
 * `Name <num>`, `<num>`, `num`, `Name`, or `Unknown`.
 *
 * The text comes from the calling party, so it is untrusted: it can carry line breaks, NULs or
 * any other control character. Everything returned here is safe to put into a mail header or a
 * body line as is: no control characters, single spaces only, bounded length.
 */

export interface CallerId {
  /** Display name, '' when the caller sent none. */
  readonly name: string;
  /** Number (or whatever the caller's network put in the number field), '' when none. */
  readonly number: string;
}

export const CALLER_NAME_MAX = 80;
export const CALLER_NUMBER_MAX = 40;

// Line and space separators become a space, so `John\r\nDoe` still reads `John Doe`.
const SEPARATORS = /[\s\u0085]+/gu;
// Every other C0/C1 control and DEL is dropped. Bidi embeddings, overrides and isolates and the
// BOM are dropped too: they can make a subject display a different number than it contains.
const INVISIBLE = /[\p{Cc}\u202A-\u202E\u2066-\u2069\uFEFF]/gu;
// A lone surrogate cannot be encoded as UTF-8; replace it rather than let an encoder guess.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * Makes untrusted text safe for one header or body line: no control characters, whitespace
 * collapsed to single spaces, trimmed, and at most `maxLength` code points (cut between
 * graphemes, so an accent is never separated from its letter).
 */
export function sanitizeText(raw: string | undefined, maxLength = Number.POSITIVE_INFINITY): string {
  if (raw === undefined) return '';
  const cleaned = raw
    .replace(LONE_SURROGATE, '\uFFFD')
    .replace(SEPARATORS, ' ')
    .replace(INVISIBLE, '')
    .replace(/ {2,}/g, ' ')
    .trim();
  return truncate(cleaned, maxLength);
}

function truncate(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text; // UTF-16 length bounds the code point count
  let out = '';
  let count = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = [...segment].length;
    if (count + size > maxLength) break;
    out += segment;
    count += size;
  }
  return out.trimEnd();
}

// A bare value is taken as a number when it is made of what phone numbers are made of.
const NUMBER_LIKE = /^\+?[\d\s().*#-]*\d[\d\s().*#-]*$/;

/** Splits and cleans an envelope's `callerid` value. Never throws. */
export function parseCallerId(raw: string | undefined): CallerId {
  // Clean first (without a length bound) so that a line break inside the value cannot hide
  // the `<num>` part from the pattern below.
  const text = sanitizeText(raw);
  let name = '';
  let number = '';
  const bracketed = /^(.*?) ?<([^<>]*)>$/.exec(text);
  if (bracketed) {
    name = unquote(bracketed[1] ?? '');
    number = bracketed[2] ?? '';
  } else if (NUMBER_LIKE.test(text)) {
    number = text;
  } else {
    name = unquote(text);
  }
  name = sanitizeText(name, CALLER_NAME_MAX);
  number = sanitizeText(number, CALLER_NUMBER_MAX);
  // Asterisk writes `Unknown` when the channel had no caller id at all.
  if (name.toLowerCase() === 'unknown') name = '';
  if (number.toLowerCase() === 'unknown') number = '';
  // Many networks send the number as the name too; saying it twice helps nobody.
  if (name === number) name = '';
  return { name, number };
}

/** `"Al \"Bo\""` → `Al "Bo"`; anything not wholly quoted is returned as it is. */
function unquote(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')) {
    return trimmed.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return trimmed;
}
