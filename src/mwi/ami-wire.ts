/**
 * The Asterisk Manager Interface (AMI) on the wire, with no I/O: encoding one action, checking
 * every name and value before it is encoded, and cutting the byte stream Asterisk sends into
 * messages (responses and events) that keep their header order.
 *
 * Facts from Asterisk's main/manager.c (get_input, do_message, astman_send_response_full) and the
 * captured transcripts described in docs/ami.md:
 * - the server first sends one banner line, `Asterisk Call Manager/<version>\r\n`;
 * - a message is `Name: value` lines, each ended by CRLF, and an empty line;
 * - Asterisk reads a request line by line and accepts CRLF *or a bare LF* as the end of a line, so
 *   a CR or LF inside a value would start a new header (or a new action) of the caller's choosing;
 *   a NUL ends the line early. Such values are refused here, before anything is written;
 * - Asterisk reads at most 1024 bytes per line and 128 headers per action and silently drops or
 *   truncates beyond that, so longer lines and more headers are refused too;
 * - some replies carry a stray LF at the end of a value (`Message: Message move successful\n\r\n`
 *   then the empty line). Lines are therefore split on CRLF only: the LF stays in the value, where
 *   callers trim it, and the message still ends at the empty line. A reader that also split on a
 *   bare LF would end the message one line early and then see a spurious empty message.
 */
import { VmbridgeError } from '../errors.js';

/** One header as received, in order; names keep the case Asterisk sent. */
export type AmiHeader = readonly [name: string, value: string];

/** Asterisk's input buffer is 1025 bytes with one kept for NUL: a line and its CRLF must fit in 1024. */
export const MAX_LINE_BYTES = 1022;
/** AST_MAX_MANHEADERS: further headers of an action are dropped by Asterisk. */
export const MAX_HEADERS = 128;
/** Limits on what vmbridge accepts from the server, so a broken peer cannot exhaust memory. */
export const MAX_INBOUND_LINE_CHARS = 64 * 1024;
export const MAX_INBOUND_HEADERS = 4096;

/** A name or value that would change the shape of an AMI message. Nothing was written. */
export class AmiUnsafeValueError extends VmbridgeError {
  readonly field: string;
  constructor(field: string, why: string) {
    super('AMI_UNSAFE_VALUE', `AMI ${field} refused before sending: ${why}`);
    this.field = field;
  }
}

/** The server sent bytes that are not AMI (no banner, an absurd line). The connection is dropped. */
export class AmiProtocolError extends VmbridgeError {
  constructor(message: string) {
    super('AMI_PROTOCOL', message);
  }
}

/** A received message: ordered headers plus case-insensitive lookup (AMI names are case-insensitive). */
export class AmiMessage {
  readonly headers: readonly AmiHeader[];

  constructor(headers: readonly AmiHeader[]) {
    this.headers = headers;
  }

  /** The first value of `name`, compared case-insensitively, as Asterisk's astman_get_header does. */
  get(name: string): string | undefined {
    const wanted = name.toLowerCase();
    for (const [n, v] of this.headers) if (n.toLowerCase() === wanted) return v;
    return undefined;
  }

  /** Every value of `name`, in order (events may repeat a header, e.g. ChanVariable). */
  getAll(name: string): string[] {
    const wanted = name.toLowerCase();
    return this.headers.filter(([n]) => n.toLowerCase() === wanted).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** `Event:` for events, undefined for responses. */
  get event(): string | undefined {
    return this.get('Event');
  }

  /** `Response:` for responses, undefined for events. */
  get response(): string | undefined {
    return this.get('Response');
  }

  get actionId(): string | undefined {
    return this.get('ActionID');
  }
}

/** Header names: a token, as every Asterisk action documents them (letters, digits, `-`, `_`). */
const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** CR and LF end a line for Asterisk; NUL ends its C string. */
const LINE_BREAKING = /[\r\n\0]/;

function describeControl(value: string): string {
  const m = LINE_BREAKING.exec(value);
  const ch = m?.[0] === '\r' ? 'CR' : m?.[0] === '\n' ? 'LF' : 'NUL';
  return `contains ${ch} at offset ${m?.index ?? -1}`;
}

/** Throws AmiUnsafeValueError unless `name` is a plain header name. */
export function assertHeaderName(name: string): void {
  if (typeof name !== 'string' || LINE_BREAKING.test(name)) {
    throw new AmiUnsafeValueError('header name', typeof name === 'string' ? describeControl(name) : 'not a string');
  }
  if (!HEADER_NAME.test(name)) {
    throw new AmiUnsafeValueError(`header name ${JSON.stringify(name)}`, 'only letters, digits, "-" and "_" are allowed');
  }
}

/** Throws AmiUnsafeValueError if `value` contains CR, LF or NUL. */
export function assertHeaderValue(name: string, value: string): void {
  if (typeof value !== 'string') throw new AmiUnsafeValueError(`value of ${name}`, 'not a string');
  if (LINE_BREAKING.test(value)) throw new AmiUnsafeValueError(`value of ${name}`, describeControl(value));
}

/**
 * Encodes one action. Every name and value is checked first; the first problem throws and nothing
 * is returned, so nothing can reach the socket. `Action` and `ActionID` come first, as in
 * Asterisk's own examples; the other headers keep the caller's order.
 */
export function encodeAction(action: string, actionId: string, headers: readonly AmiHeader[]): string {
  assertHeaderValue('Action', action);
  if (!HEADER_NAME.test(action)) throw new AmiUnsafeValueError(`action ${JSON.stringify(action)}`, 'not an action name');
  assertHeaderValue('ActionID', actionId);
  const lines: string[] = [`Action: ${action}`, `ActionID: ${actionId}`];
  for (const [name, value] of headers) {
    assertHeaderName(name);
    const lower = name.toLowerCase();
    if (lower === 'action' || lower === 'actionid') {
      throw new AmiUnsafeValueError(`header ${name}`, 'is set by the client, not by the caller');
    }
    assertHeaderValue(name, value);
    lines.push(`${name}: ${value}`);
  }
  if (lines.length > MAX_HEADERS) {
    throw new AmiUnsafeValueError(`action ${action}`, `${lines.length} headers; Asterisk keeps only ${MAX_HEADERS}`);
  }
  for (const line of lines) {
    if (Buffer.byteLength(line, 'utf8') > MAX_LINE_BYTES) {
      throw new AmiUnsafeValueError(`header ${line.slice(0, line.indexOf(':'))}`, `line longer than ${MAX_LINE_BYTES} bytes; Asterisk would discard the action`);
    }
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** `Name: value` → [name, value]. Asterisk writes exactly one space after the colon. */
export function parseHeaderLine(line: string): AmiHeader {
  const colon = line.indexOf(':');
  if (colon < 0) return [line, ''];
  const value = line.slice(colon + 1);
  return [line.slice(0, colon), value.startsWith(' ') ? value.slice(1) : value];
}

export const BANNER_PREFIX = 'Asterisk Call Manager/';

/**
 * Incremental reader for what Asterisk sends. Feed it decoded text as it arrives; it calls
 * `onBanner` once with the version and `onMessage` for every complete message.
 */
export class AmiFrameReader {
  private buffer = '';
  private banner: string | undefined;
  private current: AmiHeader[] = [];

  constructor(
    private readonly onMessage: (message: AmiMessage) => void,
    private readonly onBanner: (version: string) => void,
  ) {}

  /** The version from the banner, once it has arrived. */
  get version(): string | undefined {
    return this.banner;
  }

  /** Throws AmiProtocolError when the stream is not AMI; the caller then drops the connection. */
  push(text: string): void {
    this.buffer += text;
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.line(line);
    }
    if (this.buffer.length > MAX_INBOUND_LINE_CHARS) {
      throw new AmiProtocolError(`a line from the server is longer than ${MAX_INBOUND_LINE_CHARS} characters`);
    }
  }

  private line(line: string): void {
    if (this.banner === undefined) {
      if (!line.startsWith(BANNER_PREFIX)) {
        throw new AmiProtocolError(`expected the AMI banner, got ${JSON.stringify(line.slice(0, 60))}`);
      }
      this.banner = line.slice(BANNER_PREFIX.length);
      this.onBanner(this.banner);
      return;
    }
    if (line === '') {
      // The end of a message. Empty lines between messages carry nothing and are skipped.
      if (this.current.length === 0) return;
      const message = new AmiMessage(this.current);
      this.current = [];
      this.onMessage(message);
      return;
    }
    if (this.current.length >= MAX_INBOUND_HEADERS) {
      throw new AmiProtocolError(`a message from the server has more than ${MAX_INBOUND_HEADERS} headers`);
    }
    this.current.push(parseHeaderLine(line));
  }
}
