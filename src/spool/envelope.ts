/**
 * msgNNNN.txt, the message envelope: an Asterisk config file with one `[message]` category.
 * app_voicemail (leave_voicemail) writes `key=value`; when it adds a msg_id later (add_message_id) it
 * rewrites the file through ast_config_text_file_save, which adds a `;!` header and writes
 * `key = value`. Both are read with the same rules as Asterisk's own config parser.
 */
import { SpoolError } from '../errors.js';
import { decodeAsteriskText, scanConfigText } from '../config/voicemail-conf.js';
import type { Envelope } from './types.js';

/** Real envelopes are about 300 bytes; anything this large is not one and is not read whole. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;

/** Share of control characters above which the content is taken for binary, not text. */
const MAX_CONTROL_SHARE = 0.1;

/** `<unix-seconds>-<8 hex>` in practice; accept any printable ASCII token of sane length. */
const SANE_MSG_ID = /^[\x21-\x7e]{1,64}$/;

export function parseEnvelope(data: Buffer, path: string): Envelope {
  if (data.length > MAX_ENVELOPE_BYTES) {
    throw new SpoolError(path, `${data.length} bytes is too large for a message envelope (at most ${MAX_ENVELOPE_BYTES})`);
  }
  if (data.includes(0)) throw new SpoolError(path, 'binary content (NUL bytes), not a message envelope');
  const { text } = decodeAsteriskText(data);
  if (controlShare(text) > MAX_CONTROL_SHARE) throw new SpoolError(path, 'binary content (mostly control characters), not a message envelope');

  const values = new Map<string, string>();
  let inMessage = false;
  let sawMessage = false;
  let sawCategory = false;
  let lastKey: string | undefined;
  for (const l of scanConfigText(text).lines) {
    switch (l.kind) {
      case 'invalid':
        if (l.code === 'no-equals' && inMessage && lastKey !== undefined) {
          // app_voicemail writes values with fprintf("%s=%s\n"), unescaped: a caller ID name holding a
          // line break (set in the dialplan, say) splits the value over lines. Asterisk skips the
          // piece with a warning and still plays the message; vmbridge keeps the piece, joined with
          // the line break, so the message is not lost and the caller ID stays whole (the email
          // builder cleans control characters).
          values.set(lastKey, `${values.get(lastKey) ?? ''}\n${l.text}`);
          break;
        }
        throw new SpoolError(path, `line ${l.line}: ${l.problem}: ${JSON.stringify(clip(l.text))}`);
      case 'directive':
        // Asterisk would follow an #include here; an envelope never has one, so refuse it.
        throw new SpoolError(path, `line ${l.line}: #${l.directive} is not allowed in a message envelope`);
      case 'category':
        sawCategory = true;
        lastKey = undefined;
        inMessage = l.name.toLowerCase() === 'message';
        if (inMessage) sawMessage = true;
        break;
      case 'variable': {
        if (!sawCategory) throw new SpoolError(path, `line ${l.line}: ${JSON.stringify(clip(l.name))} comes before the [message] category`);
        if (!inMessage) break; // app_voicemail reads only [message]
        const key = l.name.toLowerCase();
        // ast_variable_retrieve returns the last of repeated keys; `+=` appends to the previous one.
        values.set(key, l.append ? (values.get(key) ?? '') + l.value : l.value);
        lastKey = key;
        break;
      }
    }
  }
  if (!sawMessage) throw new SpoolError(path, 'no [message] category');

  const origtimeText = values.get('origtime');
  if (origtimeText === undefined || origtimeText === '') {
    // play_message refuses to play a message without it, so neither is it a message for us.
    throw new SpoolError(path, 'no origtime');
  }
  const origtime = toInteger(origtimeText);
  if (origtime === undefined) throw new SpoolError(path, `origtime ${JSON.stringify(clip(origtimeText))} is not a number`);

  const durationText = values.get('duration');
  const duration = durationText === undefined ? undefined : toInteger(durationText);
  const msgIdText = values.get('msg_id');
  const msgId = msgIdText !== undefined && SANE_MSG_ID.test(msgIdText) ? msgIdText : undefined;

  const env: { -readonly [K in keyof Envelope]: Envelope[K] } = { raw: Object.fromEntries(values), origtime };
  const strings = ['origmailbox', 'context', 'macrocontext', 'exten', 'rdnis', 'priority', 'callerchan', 'callerid', 'origdate', 'category', 'flag'] as const;
  for (const key of strings) {
    const v = values.get(key);
    if (v !== undefined) env[key] = v;
  }
  if (msgId !== undefined) env.msgId = msgId;
  if (duration !== undefined) env.duration = duration;
  return env;
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
