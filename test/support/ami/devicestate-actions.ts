/**
 * res_manager_devicestate's MailboxStateChange, for the test server's opt-in "newer Asterisk"
 * mode (AmiServerOptions.mailboxStateChange).
 *
 * MODELLED FROM SOURCE, NOT FROM A CAPTURE. The captures in test/fixtures/asterisk/ami come from
 * Asterisk 22.10.1, which does not have this action. Everything here was read from Asterisk's
 * source of the release line that added it (20.23, 22.13, 23.7, 24.1):
 * res/res_manager_devicestate.c `action_mailboxstatechange`, main/mwi.c
 * `ast_publish_mwi_state_full` / `mwi_create_state`, main/manager_mwi.c `mwi_update_cb`
 * (the MessageWaiting event), res/res_mwi_devstate.c (the MWI: device state),
 * main/conversions.c `ast_str_to_int`, main/utils.c `ast_str_to_eid` / `ast_eid_cmp`.
 * No byte of a real answer to this action has been compared with what this file writes.
 *
 * What the action does, in its order:
 * 1. `Mailbox`, `NewMessages` or `OldMessages` empty: error `Missing required parameters`.
 * 2. `EntityID` empty or not parsed by ast_str_to_eid: error `Missing or invalid entity ID`.
 * 3. A count that ast_str_to_int refuses: error `Invalid mailbox counts`. (It takes a sign, so a
 *    negative count passes; vmbridge never sends one.)
 * 4. `EntityID` equal to this Asterisk's own: error
 *    `Entity ID is ourself (must be from a different Asterisk system)`.
 * 5. The Mailbox value is cut at its first `@` into mailbox and context, the state is published
 *    (urgent 0) as coming from that entity, and the answer is Success, `Updated mailbox state`.
 *    Publishing raises MessageWaiting (its `Waiting` is ast_app_has_voicemail of the mailbox on
 *    *this* Asterisk, not the published count) and, when the lamp flips, DeviceStateChange for
 *    `MWI:<mailbox>`, both after the answer, as for every other publication.
 */
import type { ActionHandler } from './context.js';
import { ack, error } from './wire.js';

/**
 * ast_str_to_eid: sscanf `%2x:%2x:%2x:%2x:%2x:%2x`. Each `%2x` skips leading blanks and reads one
 * or two hex digits; the colons must be there; whatever follows the sixth pair is ignored. (The
 * sign and `0x` prefix sscanf also accepts are not modelled.) Undefined when it does not parse.
 */
export function parseEntityId(text: string): number[] | undefined {
  const m = /^(?:\s*([0-9A-Fa-f]{1,2}):)(?:\s*([0-9A-Fa-f]{1,2}):)(?:\s*([0-9A-Fa-f]{1,2}):)(?:\s*([0-9A-Fa-f]{1,2}):)(?:\s*([0-9A-Fa-f]{1,2}):)\s*([0-9A-Fa-f]{1,2})/.exec(text);
  return m ? m.slice(1, 7).map((h) => Number.parseInt(h ?? '', 16)) : undefined;
}

/** ast_str_to_int: strtoimax base 10 over the whole value (leading blanks and a sign allowed), within int. */
function parseInt32(text: string): number | undefined {
  if (!/^\s*[+-]?\d+$/.test(text)) return undefined;
  const n = BigInt(text.trim());
  return n < -(2n ** 31n) || n > 2n ** 31n - 1n ? undefined : Number(n);
}

export const mailboxStateChange: ActionHandler = async ({ req, state, reply, emit }) => {
  const mbox = req.get('Mailbox');
  const newText = req.get('NewMessages');
  const oldText = req.get('OldMessages');
  if (mbox === '' || newText === '' || oldText === '') {
    reply(error(req, 'Missing required parameters'));
    return;
  }
  const eidText = req.get('EntityID');
  const eid = eidText === '' ? undefined : parseEntityId(eidText);
  if (!eid) {
    reply(error(req, 'Missing or invalid entity ID'));
    return;
  }
  const newCount = parseInt32(newText);
  const oldCount = parseInt32(oldText);
  if (newCount === undefined || oldCount === undefined) {
    reply(error(req, 'Invalid mailbox counts'));
    return;
  }
  const own = state.entityId;
  if (own && own.every((byte, i) => byte === eid[i])) {
    reply(error(req, 'Entity ID is ourself (must be from a different Asterisk system)'));
    return;
  }
  // strsep(&context, "@"); mwi_create_state names it mailbox@context, or mailbox alone without one.
  const at = mbox.indexOf('@');
  const mailbox = at < 0 ? mbox : mbox.slice(0, at);
  const context = at < 0 ? '' : mbox.slice(at + 1);
  const uniqueid = context === '' ? mailbox : `${mailbox}@${context}`;
  const waiting = await state.provider.hasVoicemail(uniqueid);
  reply(ack(req, 'Updated mailbox state'));
  emit(...state.mwi.publish(uniqueid, newCount, oldCount, waiting));
};
