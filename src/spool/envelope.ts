/**
 * msgNNNN.txt, the message envelope: an Asterisk config file with one `[message]` category.
 * app_voicemail (leave_voicemail) writes `key=value`; when it adds a msg_id later (add_message_id) it
 * rewrites the file through ast_config_text_file_save, which adds a `;!` header and writes
 * `key = value`. Both are read with the same rules as Asterisk's own config parser.
 *
 * Asterisk counts every msgNNNN.txt on the lamp whatever it holds, so a damaged envelope must still
 * become an email: what cannot be read is reported (file and line) and left unknown, and the rest
 * is used. Only a file that is not an envelope at all (too large to be one) is refused.
 */
import { createHash } from 'node:crypto';
import { SpoolError } from '../errors.js';
import { decodeAsteriskText, scanConfigText } from '../config/voicemail-conf.js';
import type { Envelope } from './types.js';

/** Real envelopes are about 300 bytes; anything this large is not one and is not read whole. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;

/** Share of control characters above which the content is taken for binary, not text. */
const MAX_CONTROL_SHARE = 0.1;

/** `<unix-seconds>-<8 hex>` in practice; accept any printable ASCII token of sane length. */
const SANE_MSG_ID = /^[\x21-\x7e]{1,64}$/;

/** Problems named one by one in an envelope's warning; past that they are counted. */
const MAX_LISTED_PROBLEMS = 5;

/** A backslash before a control character: how Asterisk 22 writes control characters of a value. */
const ESCAPED_CONTROL = /\\([\x01-\x1f\x7f])/g;

export interface EnvelopeReadOptions {
  /**
   * The file's modification time in epoch seconds: the date of a message whose origtime cannot be
   * read (Asterisk writes the file when the message is left, and renames keep the time).
   */
  readonly fileTime?: number;
}

export function parseEnvelope(data: Buffer, path: string, opts: EnvelopeReadOptions = {}): Envelope {
  if (data.length > MAX_ENVELOPE_BYTES) {
    throw new SpoolError(path, `${data.length} bytes is too large for a message envelope (at most ${MAX_ENVELOPE_BYTES})`);
  }
  const problems: string[] = [];
  let { text } = decodeAsteriskText(data);
  if (text.includes('\0') || controlShare(text) > MAX_CONTROL_SHARE) {
    problems.push('binary content, not text: read as far as it goes');
    // C strings end at a NUL: Asterisk's parser sees each line only up to its first one.
    text = text.split('\n').map((l) => l.split('\0')[0] ?? '').join('\n');
  }

  const message = new Map<string, string>();
  const loose = new Map<string, string>();
  let inMessage = false;
  let sawMessage = false;
  let sawCategory = false;
  let lastKey: string | undefined;
  // Text without '=' on the last line of a file that does not end in a line feed is what is left of
  // a line cut short, not the rest of a value (a key=value line there is still taken: other tools
  // write files without the final line feed).
  const cutLine = text === '' || text.endsWith('\n') ? undefined : text.split('\n').length;
  for (const l of scanConfigText(text, { escapedLineBreaks: true }).lines) {
    switch (l.kind) {
      case 'invalid':
        if (sawCategory && !inMessage) break; // app_voicemail reads only [message]
        if (l.line === cutLine) {
          problems.push(`line ${l.line}: cut short: ${JSON.stringify(clip(l.text))}; ignored`);
          break;
        }
        if (l.code === 'no-equals' && (inMessage || !sawCategory) && lastKey !== undefined) {
          // Older app_voicemail wrote values with fprintf("%s=%s\n"), unescaped: a caller ID name
          // holding a line break splits the value over lines. Asterisk skips the piece with a
          // warning; vmbridge keeps it, joined with the line break, so the caller ID stays whole
          // (the email builder cleans control characters).
          const into = inMessage ? message : loose;
          into.set(lastKey, `${into.get(lastKey) ?? ''}\n${l.text}`);
          break;
        }
        problems.push(`line ${l.line}: ${l.problem}: ${JSON.stringify(clip(l.text))}; ignored`);
        break;
      case 'directive':
        // Asterisk would follow an #include here; an envelope never has one, and it is never followed.
        problems.push(`line ${l.line}: #${l.directive} does not belong in a message envelope; ignored`);
        break;
      case 'category':
        sawCategory = true;
        lastKey = undefined;
        inMessage = l.name.toLowerCase() === 'message';
        if (inMessage) sawMessage = true;
        break;
      case 'variable': {
        if (sawCategory && !inMessage) break; // app_voicemail reads only [message]
        const into = inMessage ? message : loose;
        const key = l.name.toLowerCase();
        // ast_variable_retrieve returns the last of repeated keys; `+=` appends to the previous one.
        into.set(key, l.append ? (into.get(key) ?? '') + l.value : l.value);
        lastKey = key;
        break;
      }
    }
  }
  let values = message;
  if (!sawMessage) {
    // A file that lost its `[message]` line still holds the message's keys: use them.
    problems.push(loose.size > 0 ? 'no [message] category; the keys before any category are used' : 'no [message] category');
    values = loose;
  } else if (loose.size > 0) {
    problems.push(`${loose.size === 1 ? 'a key comes' : `${loose.size} keys come`} before the [message] category; ignored`);
  }
  for (const [key, value] of values) {
    if (value.includes('\\')) values.set(key, value.replace(ESCAPED_CONTROL, '$1'));
  }

  const env: { -readonly [K in keyof Envelope]: Envelope[K] } = { raw: Object.fromEntries(values) };
  const strings = ['origmailbox', 'context', 'macrocontext', 'exten', 'rdnis', 'priority', 'callerchan', 'callerid', 'origdate', 'category', 'flag'] as const;
  for (const key of strings) {
    const v = values.get(key);
    if (v !== undefined) env[key] = v;
  }

  const msgIdText = values.get('msg_id');
  if (msgIdText !== undefined && SANE_MSG_ID.test(msgIdText)) env.msgId = msgIdText;
  else if (msgIdText !== undefined && msgIdText !== '') problems.push(`msg_id ${JSON.stringify(clip(msgIdText))} is not an id; ignored`);

  const durationText = values.get('duration');
  const duration = durationText === undefined ? undefined : toInteger(durationText);
  if (duration !== undefined) env.duration = duration;
  else if (durationText !== undefined && durationText !== '') problems.push(`duration ${JSON.stringify(clip(durationText))} is not a number; unknown`);

  const origtimeText = values.get('origtime');
  const origtime = origtimeText === undefined ? undefined : toInteger(origtimeText);
  if (origtime !== undefined) {
    env.origtime = origtime;
  } else {
    const what = origtimeText === undefined || origtimeText === '' ? 'no origtime' : `origtime ${JSON.stringify(clip(origtimeText))} is not a number`;
    // A derived id made from the other fields could then be shared by unrelated damaged files;
    // the bytes themselves tell them apart, and copies (copy_plain_file) keep them.
    env.contentDigest = createHash('sha256').update(data).digest('hex');
    if (opts.fileTime !== undefined) {
      env.origtime = opts.fileTime;
      env.origtimeFromFile = true;
      problems.push(`${what}; the file's time is used`);
    } else {
      problems.push(what);
    }
  }

  if (problems.length > 0) env.problems = summarize(problems);
  return env;
}

function summarize(problems: readonly string[]): string[] {
  if (problems.length <= MAX_LISTED_PROBLEMS) return [...problems];
  return [...problems.slice(0, MAX_LISTED_PROBLEMS), `and ${problems.length - MAX_LISTED_PROBLEMS} more`];
}

function toInteger(s: string): number | undefined {
  if (!/^\d{1,15}$/.test(s)) return undefined;
  return Number(s);
}

/** Control characters other than tab, line feed, vertical tab, form feed and carriage return. */
function controlShare(text: string): number {
  if (text.length === 0) return 0;
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && (c < 0x09 || c > 0x0d)) || (c >= 0x7f && c <= 0x9f) || c === 0xfffd) control++;
  }
  return control / text.length;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
