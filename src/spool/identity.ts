/**
 * A message's stable identity within its mailbox. Asterisk 11 and later write `msg_id`; older systems
 * (and files copied in from them) have none, and vmbridge never rewrites Asterisk's files to add one.
 * For those the id is derived from what the envelope says about the call, so the same envelope always
 * gives the same id, on any host and after any restart. Copies of a message keep their .txt byte for
 * byte (copy_plain_file), so, like msg_id, a derived id is shared by copies.
 */
import { createHash } from 'node:crypto';
import type { Envelope } from './types.js';

/** Prefix of derived ids: it cannot collide with Asterisk's `<digits>-<hex>` msg_id. */
export const DERIVED_ID_PREFIX = 'd-';

/**
 * Derived id = `d-` + the first 24 hex digits of SHA-256 over the UTF-8 JSON text (no spaces) of
 * `["vmbridge-envelope-v1", origtime, callerid, duration, callerchan, origmailbox, exten, origdate]`,
 * numbers as numbers and absent fields as null.
 * An envelope without a readable origtime is identified by its bytes instead (`contentDigest`).
 * The recipe is part of vmbridge's stored state (IMAP headers, Message-IDs, sync records): changing
 * the fields, their order or their encoding would make every old message look new. Do not.
 */
export function messageIdentity(env: Envelope): { id: string; derived: boolean } {
  if (env.msgId !== undefined && env.msgId !== '') return { id: env.msgId, derived: false };
  if (env.contentDigest !== undefined) {
    // No origtime to make a stable id from (a damaged file): its bytes identify it instead.
    return { id: `${DERIVED_ID_PREFIX}${createHash('sha256').update(JSON.stringify(['vmbridge-envelope-bytes-v1', env.contentDigest]), 'utf8').digest('hex').slice(0, 24)}`, derived: true };
  }
  const fields = [
    env.origtime ?? null,
    env.callerid ?? null,
    env.duration ?? null,
    env.callerchan ?? null,
    env.origmailbox ?? null,
    env.exten ?? null,
    env.origdate ?? null,
  ];
  // JSON keeps the fields apart unambiguously (a value may contain any separator) and tells absent from empty.
  const digest = createHash('sha256').update(JSON.stringify(['vmbridge-envelope-v1', ...fields]), 'utf8').digest('hex');
  return { id: `${DERIVED_ID_PREFIX}${digest.slice(0, 24)}`, derived: true };
}
