/**
 * A voicemail's identity as it appears in IMAP: a deterministic Message-ID.
 *
 *     <vm.{id}.{mailbox}.{context}@{domain}>
 *     <vm.{id}.{mailbox}.{context}.{server}@{domain}>   (a mailbox of a named voicemail server)
 *
 * The main server's mailboxes have no server part, so emails written before there could be
 * several servers keep their identity.
 * Each of id, mailbox and context is encoded so that the whole left-hand side is a valid
 * RFC 5322 dot-atom whatever the parts contain: letters, digits and '-' stand for themselves,
 * every other character (including '.' and '_') is written as '_XX' per UTF-8 byte, uppercase
 * hex. The encoding is canonical, so one identity has exactly one Message-ID and back.
 *
 * Finding a message: IMAP `SEARCH HEADER Message-ID <value>` matches substrings and ignores
 * case (RFC 3501). The angle brackets make a substring match a whole-value match (`1000` would
 * otherwise find `11000`), but case is still ignored, so whoever searches must confirm every
 * hit with `parseIdentityMessageId` and an exact comparison before acting on it.
 */
import { isServerName } from '../spool/names.js';
import { boxOn, type MailboxRef } from '../spool/types.js';

/** The header that carries the identity. */
export const IDENTITY_HEADER = 'Message-ID';

const PREFIX = 'vm';
const LITERAL = /^[A-Za-z0-9-]$/;
const ENCODED_PART = /^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/;
// A domain we write after '@': dot-separated labels of letters, digits and inner hyphens.
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const WELL_FORMED = /^(?:[^\uD800-\uDFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF])*$/;

const utf8 = new TextEncoder();

/** Encodes one part of the identity (see the module comment). */
function encodePart(what: string, value: string): string {
  if (value === '') throw new RangeError(`identity ${what} must not be empty`);
  // A lone surrogate has no UTF-8 form; encoding it would silently lose it and break the round trip.
  if (!WELL_FORMED.test(value)) throw new RangeError(`identity ${what} is not well-formed Unicode`);
  let out = '';
  for (const char of value) {
    if (LITERAL.test(char)) {
      out += char;
      continue;
    }
    for (const byte of utf8.encode(char)) {
      out += '_' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

/** Inverse of encodePart; undefined unless `encoded` is exactly what encodePart would write. */
function decodePart(encoded: string): string | undefined {
  if (!ENCODED_PART.test(encoded)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; ) {
    if (encoded[i] === '_') {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(encoded.charCodeAt(i));
      i += 1;
    }
  }
  let value: string;
  try {
    value = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  // Reject non-canonical spellings (`_41` for `A`, lowercase hex was already refused above),
  // so two different Message-IDs never name the same message.
  return encodePart('part', value) === encoded ? value : undefined;
}

function checkDomain(domain: string): void {
  if (!DOMAIN.test(domain)) throw new RangeError(`Message-ID domain ${JSON.stringify(domain)} is not a valid domain name`);
}

/** The Message-ID, angle brackets included, for a message of the mailbox `ref`. */
export function identityMessageId(ref: MailboxRef, id: string, domain: string): string {
  checkDomain(domain);
  const parts = [PREFIX, encodePart('id', id), encodePart('mailbox', ref.mailbox), encodePart('context', ref.context)];
  if (ref.server !== undefined) parts.push(encodePart('server', ref.server));
  const local = parts.join('.');
  return `<${local}@${domain}>`;
}

/** The value to give `SEARCH HEADER Message-ID`: the whole Message-ID with its brackets. */
export function identitySearchValue(ref: MailboxRef, id: string, domain: string): string {
  return identityMessageId(ref, id, domain);
}

/**
 * Reads an identity back from a Message-ID header value. Undefined for anything vmbridge did
 * not write for `domain` (the domain compares case-insensitively, as domains do).
 */
export function parseIdentityMessageId(value: string, domain: string): { ref: MailboxRef; id: string } | undefined {
  const match = /^<([^<>@\s]+)@([^<>@\s]+)>$/.exec(value.trim());
  if (!match) return undefined;
  const [, local = '', valueDomain = ''] = match;
  if (valueDomain.toLowerCase() !== domain.toLowerCase()) return undefined;
  const parts = local.split('.');
  if ((parts.length !== 4 && parts.length !== 5) || parts[0] !== PREFIX) return undefined;
  const id = decodePart(parts[1] ?? '');
  const mailbox = decodePart(parts[2] ?? '');
  const context = decodePart(parts[3] ?? '');
  const server = parts.length === 5 ? decodePart(parts[4] ?? '') : undefined;
  if (id === undefined || mailbox === undefined || context === undefined) return undefined;
  if (parts.length === 5 && (server === undefined || !isServerName(server))) return undefined;
  return { ref: boxOn(server, context, mailbox), id };
}
