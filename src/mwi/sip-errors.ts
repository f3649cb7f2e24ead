/**
 * The errors a SIP NOTIFY send ends with (src/mwi/sip-notify.ts). Every one names the target as
 * `host:port` and none ever carries the password.
 */
import { VmbridgeError } from '../errors.js';

/** A NOTIFY could not be delivered. `target` is `host:port`; never carries the password. */
export class SipNotifyError extends VmbridgeError {
  readonly target: string;
  constructor(code: string, target: string, message: string, options?: { cause?: unknown }) {
    super(code, `SIP NOTIFY to ${target}: ${message}`, options);
    this.target = target;
  }
}

/** Timer F fired: no final response (RFC 3261 §17.1.2.2). */
export class SipTimeoutError extends SipNotifyError {
  readonly attempts: number;
  constructor(target: string, attempts: number, timeoutMs: number) {
    super('SIP_TIMEOUT', target, `no final response after ${attempts} transmissions in ${timeoutMs} ms`);
    this.attempts = attempts;
  }
}

/** A challenge could not be answered, or the answer was challenged again (wrong credentials). */
export class SipAuthError extends SipNotifyError {
  readonly status: number;
  constructor(target: string, status: number, message: string) {
    super('SIP_AUTH', target, message);
    this.status = status;
  }
}

/** A final response other than 2xx (and other than a challenge). */
export class SipResponseError extends SipNotifyError {
  readonly status: number;
  readonly reason: string;
  readonly statusLine: string;
  constructor(target: string, status: number, reason: string) {
    const statusLine = `SIP/2.0 ${status} ${reason}`;
    super('SIP_RESPONSE', target, `answered ${statusLine}`);
    this.status = status;
    this.reason = reason;
    this.statusLine = statusLine;
  }
}

/** The network said no: name resolution failed, or ICMP port/host unreachable (RFC 3261 §18.4). */
export class SipTransportError extends SipNotifyError {
  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super('SIP_TRANSPORT', target, message, options);
  }
}
