/**
 * Writes a MIME tree composed by nodemailer in one synchronous pass.
 *
 * nodemailer's own `build()` streams every node through a chain of Transform streams and
 * `setImmediate` hops. For a voicemail (three nodes, about 50 KB) that machinery costs far more
 * than the encoding itself: about 1.5 ms of CPU per email, a quarter of what an import spends
 * per message. The headers still come from nodemailer (`buildHeaders()`), and the bodies are
 * encoded as its streams encode them (base64 in 76-character lines; quoted-printable with its
 * own `encode`/`wrap`), so the bytes are the same — the unit tests compare both ways on random
 * trees. Anything this writer does not know (stream, file or URL content, raw nodes, user
 * transforms, newline conversion) makes it return `null`, and the caller uses `build()`.
 */
import type MimeNode from 'nodemailer/lib/mime-node/index.js';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp/index.js';

const LINE = 76;
const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * What `build()` would add that this writer cannot: these fields are not part of nodemailer's
 * typings, so they are read through this narrow view.
 */
interface NodeInternals {
  _raw?: unknown;
  _transforms?: unknown[];
  _processFuncs?: unknown[];
}

/** Whether every node of the tree is one this writer reproduces exactly. */
function writable(node: MimeNode): boolean {
  const internals = node as unknown as NodeInternals;
  if (internals._raw !== undefined && internals._raw !== null && internals._raw !== false) return false;
  if (node.newline) return false;
  if (node === node.rootNode && ((internals._transforms?.length ?? 0) > 0 || (internals._processFuncs?.length ?? 0) > 0)) return false;
  const content = node.content;
  if (content !== undefined && content !== null && typeof content !== 'string' && !Buffer.isBuffer(content)) return false;
  return node.childNodes.every(writable);
}

/** `buf` in base64, a CRLF after every 76 characters except after the last line. */
function base64Lines(buf: Buffer): Buffer {
  const text = Buffer.from(buf.toString('base64'), 'latin1');
  const full = Math.max(Math.ceil(text.length / LINE) - 1, 0);
  const out = Buffer.allocUnsafe(text.length + full * 2);
  let to = 0;
  for (let from = 0; from < text.length; from += LINE) {
    if (from > 0) { out[to++] = 0x0d; out[to++] = 0x0a; }
    to += text.copy(out, to, from, Math.min(from + LINE, text.length));
  }
  return out;
}

/**
 * The body of one node as its transfer encoding writes it, or `null` when the streaming
 * encoder could split it differently (quoted-printable over 64 KiB, or ending in a space or tab
 * that the stream holds back and encodes on its own).
 */
function encodedBody(content: string | Buffer, transferEncoding: string | false): Buffer | null {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (transferEncoding === 'base64') return base64Lines(bytes);
  if (transferEncoding === 'quoted-printable') {
    const last = bytes[bytes.length - 1];
    if (bytes.length > 64 * 1024 || last === 0x20 || last === 0x09) return null;
    return Buffer.from(qpWrap(qpEncode(bytes), LINE), 'latin1');
  }
  return bytes;
}

/** Appends the node and its children to `out`; false when some part needs the streaming path. */
function writeNode(node: MimeNode, out: Buffer[]): boolean {
  // Headers first: building them is also what sets `multipart` and `boundary`.
  const transferEncoding = node.getTransferEncoding();
  out.push(Buffer.from(`${node.buildHeaders()}\r\n\r\n`, 'utf8'));
  const content = node.content;
  if (typeof content === 'string' || Buffer.isBuffer(content)) {
    const body = encodedBody(content, transferEncoding);
    if (body === null) return false;
    if (body.length > 0) out.push(body);
  }
  if (node.multipart) {
    const boundary = String(node.boundary);
    for (const [i, child] of node.childNodes.entries()) {
      out.push(Buffer.from(`${i > 0 ? '\r\n' : ''}--${boundary}\r\n`, 'latin1'));
      if (!writeNode(child, out)) return false;
    }
    out.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  }
  return true;
}

/**
 * The whole message as nodemailer's `build()` would give it, or `null` when the tree needs
 * nodemailer's streaming path.
 */
export function mimeBytes(root: MimeNode): Buffer | null {
  if (!writable(root)) return null;
  const out: Buffer[] = [];
  if (!writeNode(root, out)) return null;
  // build() makes sure the message ends with a line break.
  const last = out[out.length - 1];
  const lastByte = last !== undefined && last.length > 0 ? last[last.length - 1] : undefined;
  if (lastByte !== 0x0a) out.push(lastByte === 0x0d ? Buffer.from('\n', 'latin1') : CRLF);
  return Buffer.concat(out);
}
