/**
 * res_mwi_external + res_mwi_external_ami, the mwiext profile: MWI counts set from outside,
 * stored by mailbox id exactly as given (`1000@default`, or a bare `2000`).
 */
import type { ActionHandler, ServerState, VoicemailProvider } from './context.js';
import { error, listAck, listComplete, actionIdLine, ack } from './wire.js';
import type { Counts } from './spool.js';

/** The provider res_mwi_external registers: counts come from the store, never from a spool. */
export function externalProvider(store: ServerState['external']): VoicemailProvider {
  return {
    // mwi_inboxcount: split on `,` and space, exact ids summed; unknown ids count 0; no urgent.
    async inboxCount(spec: string): Promise<Counts> {
      let fresh = 0;
      let old = 0;
      for (const id of spec.split(/[, ]/)) {
        const m = store.get(id);
        if (m) {
          fresh += m.new;
          old += m.old;
        }
      }
      return { urgent: 0, new: fresh, old };
    },
    // mwi_has_voicemail: split on `,` and `&`, any stored mailbox with new messages.
    async hasVoicemail(spec: string): Promise<boolean> {
      return spec.split(/[,&]/).some((id) => (store.get(id)?.new ?? 0) > 0);
    },
  };
}

/**
 * `/regex/` selects by regular expression (ast_regex_string_to_regex_pattern strips the slashes,
 * sorcery matches with POSIX regexec; JavaScript regexes stand in). Otherwise one exact id.
 */
function select(state: ServerState, mailbox: string): string[] | undefined {
  const ids = [...state.external.keys()].sort();
  if (!mailbox.startsWith('/')) return state.external.has(mailbox) ? [mailbox] : [];
  const body = mailbox.length > 1 && mailbox.endsWith('/') ? mailbox.slice(1, -1) : mailbox.slice(1);
  let re: RegExp;
  try {
    re = new RegExp(body);
  } catch {
    return undefined; // regcomp failed: sorcery returns no container
  }
  return ids.filter((id) => re.test(id));
}

function parseUnsigned(raw: string): number | undefined {
  // sscanf("%u"): leading digits are enough.
  const m = /^\s*\+?(\d+)/.exec(raw);
  return m ? Number(m[1]) % 2 ** 32 : undefined;
}

/**
 * mwi_mailbox_update: counts default to 0; the reply has no Message line (fixtures ami/mwiext/20);
 * every update publishes, even unchanged counts (21), and the new state is stored before the
 * event is written, so `Waiting` reflects it.
 */
export const mwiUpdate: ActionHandler = ({ req, state, reply, emit }) => {
  const mailbox = req.get('Mailbox');
  if (mailbox === '') {
    reply(error(req, 'Missing mailbox parameter in request'));
    return;
  }
  const counts: { new: number; old: number } = { new: 0, old: 0 };
  for (const [header, key] of [['OldMessages', 'old'], ['NewMessages', 'new']] as const) {
    const raw = req.get(header);
    if (raw === '') continue;
    const n = parseUnsigned(raw);
    if (n === undefined) {
      reply(error(req, `Invalid ${header}: ${raw}`));
      return;
    }
    counts[key] = n;
  }
  state.external.set(mailbox, counts);
  reply(ack(req));
  emit(...state.mwi.publish(mailbox, counts.new, counts.old, counts.new > 0));
};

/** mwi_mailbox_get: a list of `MWIGet` events whose ActionID comes *last* (fixtures ami/mwiext/30). */
export const mwiGet: ActionHandler = ({ req, state, reply }) => {
  const mailbox = req.get('Mailbox');
  if (mailbox === '') {
    reply(error(req, 'Missing mailbox parameter in request'));
    return;
  }
  const ids = select(state, mailbox);
  if (!ids) {
    reply(error(req, 'Mailbox container creation failure'));
    return;
  }
  let out = listAck(req, 'Mailboxes will follow');
  for (const id of ids) {
    const m = state.external.get(id) ?? { new: 0, old: 0 };
    out += `Event: MWIGet\r\nMailbox: ${id}\r\nOldMessages: ${m.old}\r\nNewMessages: ${m.new}\r\n${actionIdLine(req)}\r\n`;
  }
  reply(out + listComplete(req, 'MWIGetComplete', ids.length));
};

/**
 * mwi_mailbox_delete: unknown mailboxes are a silent Success (41). A deleted mailbox with counts
 * publishes 0/0 first (mwi_observe_delete), and the cache entry goes.
 */
export const mwiDelete: ActionHandler = ({ req, state, reply, emit }) => {
  const mailbox = req.get('Mailbox');
  if (mailbox === '') {
    reply(error(req, 'Missing mailbox parameter in request'));
    return;
  }
  for (const id of select(state, mailbox) ?? []) {
    const m = state.external.get(id);
    state.external.delete(id);
    if (m && (m.new > 0 || m.old > 0)) emit(...state.mwi.publish(id, 0, 0, false));
    state.mwi.delete(id);
  }
  reply(ack(req));
};
