/**
 * SIP NOTIFY's transport over UDP: a socket connected to the target, and the non-INVITE client
 * transaction with its retransmissions (RFC 3261 §17.1.2).
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { SipNotifyError, SipTimeoutError, SipTransportError } from './sip-errors.js';
import { matches, parseResponse, type SipResponse } from './sip-message.js';

export interface Run {
  readonly socket: Socket;
  readonly label: string;
  readonly t1: number;
  readonly t2: number;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  attempts: number;
}

/**
 * RFC 3261 §17.1.2.2 (non-INVITE client transaction, unreliable transport). Trying: send, Timer E
 * at T1, on each firing retransmit and double the interval up to T2. A provisional response moves
 * to Proceeding, where retransmissions go on (so the final response is not lost) but every T2.
 * A final response ends it; Timer F (64*T1) ends it with a timeout. Responses that do not match
 * branch, CSeq and Call-ID are ignored, which also absorbs late copies from an earlier transaction.
 */
export function runTransaction(run: Run, request: Buffer, branch: string, cseq: number, callId: string): Promise<SipResponse> {
  const { socket, label } = run;
  return new Promise<SipResponse>((resolve, reject) => {
    let interval = run.t1;
    let proceeding = false;
    let timerE: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (err: Error | undefined, response?: SipResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timerE);
      clearTimeout(timerF);
      socket.off('message', onMessage);
      socket.off('error', onError);
      run.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (response) resolve(response);
    };
    const transmit = (): void => {
      run.attempts++;
      socket.send(request, (err) => {
        if (err) finish(new SipTransportError(label, `send failed: ${err.message}`, { cause: err }));
      });
    };
    const fireE = (): void => {
      transmit();
      interval = proceeding ? run.t2 : Math.min(interval * 2, run.t2);
      timerE = setTimeout(fireE, interval);
    };
    const onMessage = (datagram: Buffer): void => {
      const r = parseResponse(datagram);
      if (!r || !matches(r, branch, cseq, callId)) return;
      if (r.status < 200) {
        proceeding = true;
        return;
      }
      finish(undefined, r);
    };
    const onError = (err: Error): void => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const why = code === 'ECONNREFUSED' ? 'nothing listens there (ICMP port unreachable)' : err.message;
      finish(new SipTransportError(label, why, { cause: err }));
    };
    const onAbort = (): void => finish(new SipNotifyError('SIP_ABORTED', label, 'aborted'));
    const timerF = setTimeout(() => finish(new SipTimeoutError(label, run.attempts, run.timeout)), run.timeout);

    socket.on('message', onMessage);
    socket.on('error', onError);
    run.signal?.addEventListener('abort', onAbort, { once: true });
    transmit();
    timerE = setTimeout(fireE, interval);
  });
}

/** Where the socket goes: the target's host (name or literal) and port; `label` names it in errors. */
export interface Destination {
  readonly host: string;
  readonly port: number;
  readonly label: string;
}

export async function openSocket(c: Destination): Promise<Socket> {
  let address: string;
  let family: number;
  try {
    // Plain A/AAAA resolution; RFC 3263 SRV/NAPTR lookup is not done (give the host and port).
    ({ address, family } = await lookup(c.host));
  } catch (err) {
    throw new SipTransportError(c.label, `cannot resolve ${c.host}`, { cause: err });
  }
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    // A connected socket only hears from the target and learns about ICMP errors (RFC 3261 §18.4).
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(c.port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    throw new SipTransportError(c.label, `cannot open a UDP socket towards ${address}`, { cause: err });
  }
  // Errors are reported by the running transaction's own listener. This one only keeps an ICMP
  // error that lands between two transactions from becoming an uncaught 'error' event.
  socket.on('error', () => undefined);
  return socket;
}
