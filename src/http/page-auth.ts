/**
 * The login in front of the status page and the queue view: HTTP Basic authentication (RFC 7617)
 * so that a browser asks for it by itself, or `Authorization: Bearer <password>` (RFC 6750) for
 * scripts. Compared in constant time, so how long a refusal takes says nothing about the password.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface PageCredentials {
  readonly username: string;
  readonly password: string;
}

// Hashing first gives both sides the same length, which timingSafeEqual needs.
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

export function isAuthorized(header: string | undefined, creds: PageCredentials): boolean {
  if (header === undefined) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return sameSecret(value, creds.password);
  if (scheme !== 'basic') return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  // Both compared whatever the first gives, so a wrong user takes as long as a wrong password.
  const userOk = sameSecret(decoded.slice(0, colon), creds.username);
  const passOk = sameSecret(decoded.slice(colon + 1), creds.password);
  return userOk && passOk;
}

/** Answers 401 with the challenge and returns false when the request does not carry the login. */
export function requireLogin(req: IncomingMessage, res: ServerResponse, creds: PageCredentials): boolean {
  if (isAuthorized(req.headers.authorization, creds)) return true;
  res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Basic realm="vmbridge", charset="UTF-8"', 'cache-control': 'no-store' });
  res.end('login required (http.status.username and the password in http.status.passwordFile)\n');
  return false;
}
