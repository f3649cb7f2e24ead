/**
 * The AMI wire as Asterisk's main/manager.c handles it, for the test server.
 *
 * In: get_input() ends a line at CRLF *or a bare LF*; do_message() collects lines until an empty
 * one and then runs the action, even with no lines at all. A line may hold at most 1024 bytes
 * (inbuf[1025] minus the NUL) and an action at most 128 headers (AST_MAX_MANHEADERS).
 * Header lookup (__astman_get_header) is a case-insensitive prefix match of `Name` followed
 * directly by `:`, first match wins, leading blanks of the value skipped.
 *
 * Out: astman_send_response_full() writes `Response`, then `ActionID` if the request had one,
 * then `EventList` for list acks, then `Message` if any, then the empty line. Lists end with
 * `Event: <X>Complete`, `ActionID`, `EventList: Complete`, `ListItems: N`.
 *
 * Text is handled as latin1 so that every byte read from a socket or a file goes back out unchanged.
 */

export const BANNER = 'Asterisk Call Manager/11.0.0\r\n';

const MAX_LINE = 1024;
const MAX_HEADERS = 128;

/** One action as received: the raw lines, in order. */
export class AmiRequest {
  readonly lines: readonly string[];
  /** Set when a line was too long or there were too many lines: Asterisk answers an error instead. */
  readonly parseError: string | undefined;

  constructor(lines: readonly string[], parseError?: string) {
    this.lines = lines;
    this.parseError = parseError;
  }

  /** __astman_get_header(m, name, GET_HEADER_FIRST_MATCH): '' when absent. */
  get(name: string): string {
    return this.find(name, false) ?? '';
  }

  /** GET_HEADER_SKIP_EMPTY, used for `Action`. */
  getNonEmpty(name: string): string {
    return this.find(name, true) ?? '';
  }

  private find(name: string, skipEmpty: boolean): string | undefined {
    const lower = name.toLowerCase();
    for (const line of this.lines) {
      if (line.slice(0, name.length).toLowerCase() === lower && line[name.length] === ':') {
        const value = line.slice(name.length + 1).replace(/^[ \t]+/, '');
        if (skipEmpty && value === '') continue;
        return value;
      }
    }
    return undefined;
  }

  /** The lines as [name, value] pairs, for test assertions. */
  headers(): Array<[string, string]> {
    return this.lines.map((line) => {
      const colon = line.indexOf(':');
      return colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+/, '')];
    });
  }
}

/** Cuts the client's byte stream into AmiRequests, exactly where Asterisk would. */
export class RequestReader {
  private pending = '';
  private lines: string[] = [];
  private tooLong = false;
  private tooMany = false;

  constructor(private readonly onRequest: (req: AmiRequest) => void) {}

  push(chunk: Buffer): void {
    this.pending += chunk.toString('latin1');
    for (;;) {
      const lf = this.pending.indexOf('\n');
      if (lf < 0) break;
      const cr = lf > 0 && this.pending[lf - 1] === '\r';
      const line = this.pending.slice(0, cr ? lf - 1 : lf);
      this.pending = this.pending.slice(lf + 1);
      this.line(line);
    }
    if (this.pending.length >= MAX_LINE) {
      // "Line too long": Asterisk keeps only the last byte (maybe half of a CRLF) and answers an
      // error when the message ends.
      this.pending = this.pending.slice(-1);
      this.tooLong = true;
    }
  }

  private line(raw: string): void {
    // A NUL ends the C string: whatever follows it on the line is never seen.
    const nul = raw.indexOf('\0');
    const line = nul < 0 ? raw : raw.slice(0, nul);
    if (line === '') {
      const error = this.tooMany
        ? 'Too many lines in message or allocation failure'
        : this.tooLong
          ? 'Failed to parse message: line too long'
          : undefined;
      const req = new AmiRequest(this.lines, error);
      this.lines = [];
      this.tooLong = false;
      this.tooMany = false;
      this.onRequest(req);
      return;
    }
    if (this.lines.length < MAX_HEADERS) this.lines.push(line);
    else this.tooMany = true;
  }
}

/** astman_send_response_full. `message` undefined writes no Message line. */
export function response(req: AmiRequest, resp: string, message?: string, listFlag?: string): string {
  let out = `Response: ${resp}\r\n`;
  const id = req.get('ActionID');
  if (id !== '') out += `ActionID: ${id}\r\n`;
  if (listFlag !== undefined) out += `EventList: ${listFlag}\r\n`;
  if (message !== undefined) out += `Message: ${message}\r\n`;
  return `${out}\r\n`;
}

export const ack = (req: AmiRequest, message?: string): string => response(req, 'Success', message);
export const error = (req: AmiRequest, message: string): string => response(req, 'Error', message);
export const listAck = (req: AmiRequest, message: string): string => response(req, 'Success', message, 'start');

/** astman_start_ack: the response line and ActionID, the caller appends the rest. */
export function startAck(req: AmiRequest): string {
  const id = req.get('ActionID');
  return `Response: Success\r\n${id === '' ? '' : `ActionID: ${id}\r\n`}`;
}

/** `ActionID: x\r\n` or '' (the idText many list actions build). */
export function actionIdLine(req: AmiRequest): string {
  const id = req.get('ActionID');
  return id === '' ? '' : `ActionID: ${id}\r\n`;
}

/** astman_send_list_complete_start + _end. */
export function listComplete(req: AmiRequest, eventName: string, count: number): string {
  return `Event: ${eventName}\r\n${actionIdLine(req)}EventList: Complete\r\nListItems: ${count}\r\n\r\n`;
}

/** `Name: value\r\n` for each field, in order. */
export function fieldLines(fields: ReadonlyArray<readonly [string, string | number]>): string {
  return fields.map(([k, v]) => `${k}: ${v}\r\n`).join('');
}
