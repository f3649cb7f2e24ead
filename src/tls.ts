/**
 * TLS for every server vmbridge connects to (IMAP, SMTP, Redis, AMI, SIP): one way to turn a
 * `tls` settings block into Node's connection options, and one way to say why a certificate was
 * refused, naming the server and the setting that fixes it. Verification is on unless a setting
 * turns it off (which the settings loader warns about).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { VmbridgeError } from './errors.js';

/** The `tls` block each server's settings have (schema.ts tlsSettings). */
export interface TlsSettings {
  /** Verify the certificate (chain and host name). */
  readonly rejectUnauthorized: boolean;
  /** PEM file of the CA(s) to trust instead of the system's (a private CA). */
  readonly caFile?: string | undefined;
  /** The name the certificate must hold, when it differs from the host connected to. */
  readonly servername?: string | undefined;
}

/**
 * Node's options for a TLS connection. The CA file is read at every call, so a renewed CA is
 * used at the next connection without a restart.
 */
export function tlsConnectOptions(tls: TlsSettings): ConnectionOptions {
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.caFile !== undefined ? { ca: readFileSync(tls.caFile) } : {}),
    ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
  };
}

/** Node's codes for a chain that does not lead to a trusted CA. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CRL_HAS_EXPIRED']);

/** The certificate of `server` was refused; `message` says why and which setting helps. */
export class TlsCertificateError extends VmbridgeError {
  readonly server: string;
  /** Node's code for the refusal, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
  readonly reason: string;
  constructor(server: string, reason: string, message: string, options?: { cause?: unknown }) {
    super('TLS_CERTIFICATE', message, options);
    this.server = server;
    this.reason = reason;
  }
}

function certificateCode(err: unknown): { code: string; message: string } | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    // nodemailer replaces the code with its own (ESOCKET) and keeps Node's as originalCode.
    const x = e as { code?: unknown; originalCode?: unknown; message?: unknown };
    for (const code of [x.code, x.originalCode]) {
      if (typeof code === 'string' && (UNTRUSTED.has(code) || EXPIRED.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID')) {
        return { code, message: typeof x.message === 'string' ? x.message : code };
      }
    }
  }
  return undefined;
}

/**
 * A TlsCertificateError when `err` (or one of its causes) is a refused certificate, else
 * undefined. `server` names it for the reader (`IMAP server mail.example.com:993`); `key` is its
 * settings block (`imap.tls`).
 */
export function certificateError(err: unknown, server: string, key: string, tls: TlsSettings): TlsCertificateError | undefined {
  const found = certificateCode(err);
  if (!found) return undefined;
  const { code } = found;
  let text: string;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    text = `the TLS certificate of ${server} is for another host name (${found.message.replace(/^Hostname\/IP does not match certificate's altnames: /, '')}); connect by a name the certificate holds, or set ${key}.servername to the name it was issued for`;
  } else if (EXPIRED.has(code)) {
    text = `the TLS certificate of ${server} is outside its validity period (${code}); renew it on the server`;
  } else if (tls.caFile !== undefined) {
    text = `the TLS certificate of ${server} is not signed by the CA in ${key}.caFile (${tls.caFile}) (${code}); set ${key}.caFile to the CA that issued the server's certificate`;
  } else {
    text = `the TLS certificate of ${server} is not signed by a CA this system trusts (${code}); for a private CA, set ${key}.caFile to that CA's certificate (PEM)`;
  }
  return new TlsCertificateError(server, code, text, { cause: err });
}
