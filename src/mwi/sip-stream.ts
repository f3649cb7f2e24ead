/**
 * SIP NOTIFY's transport over a stream, TCP or TLS (RFC 3261 §18): messages framed by
 * Content-Length, and the non-INVITE client transaction of a reliable transport (RFC 3261
 * §17.1.2.2: no Timer E retransmissions, Timer F still ends it).
 *
 * One connection per send: opened by sendSipNotify, used for the request and, after a challenge,
 * for the authenticated retry, then closed. Why not one kept per target: the sender publishes a
 * handful of NOTIFYs when counts change, with long quiet gaps; a kept connection would need
 * keep-alives (RFC 5626 CRLF pings) and reconnection, and would be closed by the proxy's idle
 * timer anyway (Kamailio's tcp_connection_lifetime is 120 s by default). Opening one per send keeps
 * the sender as stateless as over UDP, costs one handshake per publication, and the retry still
 * reuses the connection the challenge came on.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { certificateError, tlsConnectOptions, type TlsSettings } from '../tls.js';
import { SipNotifyError, SipTimeoutError, SipTransportError } from './sip-errors.js';
import { matches, parseResponse, type SipResponse } from './sip-message.js';

/** The most a response may take, head and body (a 401 with a few challenges is under 1 KiB). */
export const MAX_STREAM_MESSAGE = 64 * 1024;

/** The stream did not hold SIP messages as RFC 3261 §18.3 frames them. */
export class SipFramingError extends Error {}

/**
 * Cuts a byte stream into SIP messages (RFC 3261 §18.3): the head ends at the first empty line,
 * and Content-Length, mandatory on a stream, gives the body's length in bytes. CRLFs before a
 * message are skipped (RFC 3261 §7.5; the keep-alive pings and pongs of RFC 5626 §3.5.1).
 */
export class SipStreamFramer {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessage = MAX_STREAM_MESSAGE) {}

  /** Takes the next chunk; returns the messages it completed, in order. Throws SipFramingError. */
  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      let start = 0;
      while (start < this.buffer.length && (this.buffer[start] === 0x0d || this.buffer[start] === 0x0a)) start++;
      if (start > 0) this.buffer = this.buffer.subarray(start);
      if (this.buffer.length === 0) break;
      // latin1 maps each byte to one character, so string indexes are byte offsets.
      const text = this.buffer.toString('latin1', 0, Math.min(this.buffer.length, this.maxMessage + 4));
      const end = /\r?\n\r?\n/.exec(text);
      if (!end) {
        if (this.buffer.length > this.maxMessage) throw new SipFramingError(`a message head longer than ${this.maxMessage} bytes`);
        break;
      }
      const head = text.slice(0, end.index);
      const bodyStart = end.index + end[0].length;
      const length = contentLength(head);
      if (bodyStart + length > this.maxMessage) throw new SipFramingError(`a message of ${bodyStart + length} bytes, over the limit of ${this.maxMessage}`);
      if (this.buffer.length < bodyStart + length) break;
      // A copy: the rest of the buffer is not kept alive by a message handed out.
      out.push(Buffer.from(this.buffer.subarray(0, bodyStart + length)));
      this.buffer = this.buffer.subarray(bodyStart + length);
    }
    return out;
  }

  /** Bytes received that are not yet a whole message. */
  get pending(): number {
    return this.buffer.length;
  }
}

function contentLength(head: string): number {
  const values = head
    .split(/\r?\n/)
    .slice(1)
    .map((line) => /^(?:content-length|l)[ \t]*:[ \t]*(.*)$/i.exec(line)?.[1])
    .filter((v): v is string => v !== undefined);
  const first = values[0];
  if (first === undefined) throw new SipFramingError('a message without Content-Length, which a stream needs to find where it ends (RFC 3261 §18.3)');
  const value = first.trim();
  if (!/^[0-9]{1,9}$/.test(value)) throw new SipFramingError(`a Content-Length of ${JSON.stringify(value.slice(0, 20))}, not a number of bytes`);
  if (values.some((v) => v.trim() !== value)) throw new SipFramingError('a message with two different Content-Length values');
  return Number(value);
}

/** Where the stream goes and how a TLS server's certificate is checked. */
export interface StreamDestination {
  readonly host: string;
  /** `host` is a name, not an IP literal: TLS then sends it as SNI and checks the certificate for it. */
  readonly hostIsName: boolean;
  readonly port: number;
  /** `host:port`, for errors. */
  readonly label: string;
  readonly transport: 'tcp' | 'tls';
  readonly tls: TlsSettings;
  /** The settings block of `tls`, named in certificate errors (`mwi.targets[name=proxy].tls`). */
  readonly tlsSettingsKey: string;
}

const NAME = { tcp: 'TCP', tls: 'TLS' } as const;

/** Node's connection errors, said for a reader. */
function why(err: NodeJS.ErrnoException, dest: StreamDestination, address: string, connected: boolean): string {
  const t = NAME[dest.transport];
  switch (err.code) {
    case 'ECONNREFUSED':
      return `${t} connection refused: nothing listens on ${address} port ${dest.port}`;
    case 'ECONNRESET':
      return connected
        ? `${t} connection reset by the target before a final response`
        : dest.transport === 'tls'
          ? 'TLS connection reset by the target during the handshake (does it speak TLS on this port?)'
          : 'TCP connection reset by the target while connecting';
    case 'EPIPE':
      return `${t} connection closed by the target while sending`;
    case 'ETIMEDOUT':
      return `${t} connection to ${address} port ${dest.port} timed out`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${t} connection to ${address} port ${dest.port}: no route to the host (${err.code})`;
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `TLS handshake failed: what came back is not TLS (${err.code}); is this the target's TLS port, or does it speak plain SIP here (transport tcp)?`;
    default: {
      // OpenSSL's errors carry a short `reason` ("sslv3 alert handshake failure"); their message is a dump.
      const reason = (err as { reason?: unknown }).reason;
      if (typeof err.code === 'string' && err.code.startsWith('ERR_SSL_')) return `TLS handshake failed: ${typeof reason === 'string' ? reason : err.code} (${err.code})`;
      return `${t} connection: ${err.message}`;
    }
  }
}

/** One connection to the target, carrying one transaction at a time. */
export class SipStream {
  /** Requests written, the authenticated retry included (a stream never retransmits). */
  attempts = 0;
  private onResponse: ((r: SipResponse) => void) | undefined;
  private onFailure: ((err: SipNotifyError) => void) | undefined;
  private failure: SipNotifyError | undefined;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly dest: StreamDestination,
    private readonly address: string,
  ) {
    const framer = new SipStreamFramer();
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = framer.push(chunk);
      } catch (err) {
        this.fail(new SipTransportError(dest.label, `the target sent a broken stream: ${(err as Error).message}`, { cause: err }));
        socket.destroy();
        return;
      }
      // Requests from the target (an OPTIONS keep-alive) and stray responses are not ours: dropped.
      for (const m of messages) {
        const r = parseResponse(m);
        if (r) this.onResponse?.(r);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail(new SipTransportError(dest.label, why(err, dest, address, true), { cause: err }));
    });
    socket.on('close', () => {
      this.fail(new SipTransportError(dest.label, `${NAME[dest.transport]} connection closed by the target before a final response`));
    });
  }

  /**
   * Resolves the host, connects, and for TLS completes the handshake with the certificate checked
   * as `dest.tls` says (against the host name by default). All of it within `timeoutMs`.
   */
  static async open(dest: StreamDestination, timeoutMs: number, signal: AbortSignal | undefined): Promise<SipStream> {
    let address: string;
    try {
      // Plain A/AAAA resolution, as over UDP; no RFC 3263 lookup.
      ({ address } = await lookup(dest.host));
    } catch (err) {
      throw new SipTransportError(dest.label, `cannot resolve ${dest.host}`, { cause: err });
    }
    let tlsOptions;
    if (dest.transport === 'tls') {
      try {
        tlsOptions = tlsConnectOptions(dest.tls);
      } catch (err) {
        throw new SipTransportError(dest.label, `cannot read ${dest.tlsSettingsKey}.caFile ${dest.tls.caFile ?? ''}: ${(err as Error).message}`, { cause: err });
      }
    }
    const socket: Socket =
      dest.transport === 'tls'
        ? tlsConnect({
            host: address,
            port: dest.port,
            // The certificate is checked for the configured host name, not the address it resolved
            // to; SNI carries that name (never an IP literal, RFC 6066 §3). tls.servername overrides.
            ...(dest.hostIsName ? { servername: dest.host } : {}),
            ...tlsOptions,
          })
        : netConnect({ host: address, port: dest.port });
    const ready = dest.transport === 'tls' ? 'secureConnect' : 'connect';
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        socket.off(ready, onReady);
        socket.off('error', onError);
        socket.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          // A late second error from the dying socket must not become an uncaught 'error' event.
          socket.on('error', () => undefined);
          socket.destroy();
          reject(err);
        } else resolve();
      };
      const onReady = (): void => done();
      const onError = (err: NodeJS.ErrnoException): void => {
        const refused = dest.transport === 'tls' ? certificateError(err, `SIP server ${dest.label}`, dest.tlsSettingsKey, dest.tls) : undefined;
        if (refused) done(new SipTransportError(dest.label, refused.message, { cause: refused }));
        else done(new SipTransportError(dest.label, why(err, dest, address, false), { cause: err }));
      };
      const onClose = (): void =>
        done(new SipTransportError(dest.label, dest.transport === 'tls' ? 'TLS connection closed by the target during the handshake' : 'TCP connection closed by the target while connecting'));
      const onAbort = (): void => done(new SipNotifyError('SIP_ABORTED', dest.label, 'aborted'));
      const timer = setTimeout(
        () => done(new SipTransportError(dest.label, `no ${dest.transport === 'tls' ? 'TLS connection (TCP connect and handshake)' : 'TCP connection'} to ${address} port ${dest.port} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once(ready, onReady);
      socket.once('error', onError);
      socket.once('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    socket.setNoDelay(true);
    return new SipStream(socket, dest, address);
  }

  /** The local end, for Via and Contact. */
  get local(): { address: string; family: string; port: number } {
    return { address: this.socket.localAddress ?? '', family: this.socket.localFamily ?? (isIP(this.socket.localAddress ?? '') === 6 ? 'IPv6' : 'IPv4'), port: this.socket.localPort ?? 0 };
  }

  /**
   * RFC 3261 §17.1.2.2 over a reliable transport: the request is written once (the transport
   * delivers it or fails), provisional responses are noted and otherwise ignored, the final
   * response that matches branch, CSeq and Call-ID ends it, and Timer F (`timeoutMs`) bounds it.
   * A connection that fails or closes first ends it with SipTransportError.
   */
  transact(request: Buffer, branch: string, cseq: number, callId: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<SipResponse> {
    const { label } = this.dest;
    return new Promise<SipResponse>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      let settled = false;
      const finish = (err: Error | undefined, response?: SipResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timerF);
        this.onResponse = undefined;
        this.onFailure = undefined;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else if (response) resolve(response);
      };
      this.onResponse = (r) => {
        if (!matches(r, branch, cseq, callId) || r.status < 200) return;
        finish(undefined, r);
      };
      this.onFailure = (err) => finish(err);
      const onAbort = (): void => finish(new SipNotifyError('SIP_ABORTED', label, 'aborted'));
      const timerF = setTimeout(() => finish(new SipTimeoutError(label, this.attempts, timeoutMs)), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.attempts++;
      this.socket.write(request, (err) => {
        if (err) finish(new SipTransportError(label, `send failed: ${err.message}`, { cause: err }));
      });
    });
  }

  /** Ends the connection: a FIN (and TLS close_notify), then destroyed if the target lingers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onResponse = undefined;
    this.onFailure = undefined;
    if (this.socket.destroyed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  private fail(err: SipNotifyError): void {
    if (this.closed) return;
    this.failure ??= err;
    this.onFailure?.(this.failure);
  }
}
