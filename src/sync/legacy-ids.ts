/**
 * A voicemail recorded before Asterisk 11 has no msg_id, so vmbridge derives its identity from the
 * envelope. Asterisk adds a msg_id to such a message later, the first time something takes a
 * snapshot of the mailbox (AMI VoicemailBoxSummary, a move or a forward). Without care that looks
 * like one message deleted and another one new. This maps the email and the record that still
 * carry the derived identity onto the msg_id, so the message keeps its email, flags and folder.
 */
import { messageIdentity } from '../spool/identity.js';
import type { SpoolMessage } from '../spool/types.js';
import type { ImapSide, SyncRecord } from './plan.js';

export interface Adoption {
  readonly from: string;
  readonly to: string;
  /** A record found under `from`: the caller removes it there and writes `record` (if any) under `to`. */
  readonly hadLegacyRecord: boolean;
  /** The record moved from `from` to `to`; undefined when `to` had one already. */
  readonly record: SyncRecord | undefined;
}

/**
 * The email keeps the Message-ID it was given, so its copies are always read under the msg_id from
 * now on; a record under the derived identity moves to the msg_id unless one is there already.
 */
export function adoptLegacyIds(
  messages: Iterable<SpoolMessage>,
  imap: Map<string, ImapSide[]>,
  records: Map<string, SyncRecord>,
): Adoption[] {
  const adopted: Adoption[] = [];
  for (const m of messages) {
    if (m.derivedId) continue;
    const legacy = messageIdentity({ ...m.envelope, msgId: undefined }).id;
    if (legacy === m.id || (!imap.has(legacy) && !records.has(legacy))) continue;
    const copies = imap.get(legacy);
    if (copies) {
      imap.set(m.id, [...(imap.get(m.id) ?? []), ...copies]);
      imap.delete(legacy);
    }
    const legacyRecord = records.get(legacy);
    records.delete(legacy);
    const moved = legacyRecord !== undefined && !records.has(m.id);
    if (moved) records.set(m.id, legacyRecord);
    adopted.push({ from: legacy, to: m.id, hadLegacyRecord: legacyRecord !== undefined, record: moved ? legacyRecord : undefined });
  }
  return adopted;
}
