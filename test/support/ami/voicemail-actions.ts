/**
 * app_voicemail's manager actions (apps/app_voicemail.c manager_*), the voicemail profile.
 */
import type { MailboxRef } from '../../../src/spool/types.js';
import { SPOOL_FOLDERS } from '../../../src/spool/types.js';
import type { ActionContext, ActionHandler, ServerState, VoicemailBox } from './context.js';
import type { ServerEvent } from './events.js';
import { copyToFolder, folderByName, inboxCount, openFolder, readEnvelope, removeFromFolder } from './spool.js';
import { ack, actionIdLine, error, listAck, listComplete } from './wire.js';

// ---------------------------------------------------------------------------------------------
// MWI publishing

/**
 * poll_subscribed_mailbox: recount from disk and publish when the counts differ from the cached
 * state. The cache holds urgent=0 and new=new+urgent, but the comparison uses the fresh urgent
 * and INBOX-only new: while a mailbox has urgent messages every poll or refresh publishes again
 * (the repeating MessageWaiting of fixtures ami/voicemail/63). Returns the events, if any.
 */
export async function pollMailbox(state: ServerState, mailbox: string): Promise<ServerEvent[]> {
  const c = await inboxCount(state.spoolDir, mailbox);
  const cached = state.mwi.get(mailbox) ?? { urgent: 0, new: 0, old: 0 };
  if (c.urgent === cached.urgent && c.new === cached.new && c.old === cached.old) return [];
  return publishCounts(state, mailbox);
}

/** queue_mwi_event after notify_new_state: always publishes new+urgent / old. */
export async function publishCounts(state: ServerState, mailbox: string): Promise<ServerEvent[]> {
  const c = await inboxCount(state.spoolDir, mailbox);
  const waiting = await state.provider.hasVoicemail(mailbox);
  return state.mwi.publish(mailbox, c.new + c.urgent, c.old, waiting);
}

/** At load app_voicemail publishes every configured mailbox (append_mailbox); nobody is listening yet. */
export async function seedMwi(state: ServerState): Promise<void> {
  for (const box of await state.boxes()) {
    const id = `${box.mailbox}@${box.context}`;
    const c = await inboxCount(state.spoolDir, id);
    state.mwi.seed(id, c.new + c.urgent, c.old);
  }
}

/**
 * manager_match_mailbox: no Context and no Mailbox refreshes everything; Mailbox alone compares
 * with strncmp over the length of the cached mailbox part (so the header only has to start with
 * it); Context alone compares the context; both compare both.
 */
function refreshMatches(id: string, context: string, mailbox: string): boolean {
  const at = id.indexOf('@');
  if (at < 0) return context === '' && mailbox === '';
  const idMailbox = id.slice(0, at);
  const idContext = id.slice(at + 1);
  const mailboxOk = mailbox === '' || mailbox.startsWith(idMailbox);
  const contextOk = context === '' || context === idContext;
  return mailboxOk && contextOk;
}

export const voicemailRefresh: ActionHandler = async ({ req, state, reply, emit }) => {
  const context = req.get('Context');
  const mailbox = req.get('Mailbox');
  for (const id of await refreshTargets(state, context, mailbox)) emit(...(await pollMailbox(state, id)));
  reply(ack(req, 'Refresh sent'));
};

/**
 * The cached mailboxes a refresh polls, in the cache's order. Mailboxes configured after start
 * count as published at load with what the spool held then: nothing. With both Context and
 * Mailbox, only the mailbox parts Mailbox starts with can match, so those few are looked up by
 * name; Asterisk walks its list of users in C, while listing and walking 10,000 mailboxes here
 * for each of 10,000 refreshes (a large installation's start) grows with the square of its size.
 */
async function refreshTargets(state: ServerState, context: string, mailbox: string): Promise<string[]> {
  if (context !== '' && mailbox !== '') {
    const ids: string[] = [];
    for (let end = 1; end <= mailbox.length; end++) {
      const part = mailbox.slice(0, end);
      const id = `${part}@${context}`;
      if (!state.mwi.get(id) && (await state.findBox(context, part))) state.mwi.seed(id, 0, 0);
      if (state.mwi.get(id)) ids.push(id);
    }
    return ids.sort();
  }
  for (const box of await state.boxes()) {
    const id = `${box.mailbox}@${box.context}`;
    if (!state.mwi.get(id)) state.mwi.seed(id, 0, 0);
  }
  return state.mwi.mailboxes().filter((id) => refreshMatches(id, context, mailbox));
}

// ---------------------------------------------------------------------------------------------
// Users

/**
 * The [general] values of the captured voicemail.conf (fixtures config/voicemail.conf) and the
 * per-user defaults app_voicemail prints for them (append_vmu_info_astman).
 */
const VOICEMAIL_GENERAL = {
  serverEmail: 'asterisk@pbx.example.invalid',
  fromString: 'Voicemail System',
  mailCommand: '/usr/sbin/sendmail -t',
  maxMessageCount: 100,
  maxMessageLength: 120,
} as const;

async function userEntry(state: ServerState, event: string, idText: string, box: VoicemailBox): Promise<string> {
  // inboxcount: NewMessageCount includes urgent messages.
  const c = await inboxCount(state.spoolDir, `${box.mailbox}@${box.context}`);
  const fields: Array<[string, string | number]> = [
    ['VMContext', box.context],
    ['VoiceMailbox', box.mailbox],
    ['Fullname', box.fullName ?? ''],
    ['Email', box.email ?? ''],
    ['Pager', ''],
    ['ServerEmail', VOICEMAIL_GENERAL.serverEmail],
    ['FromString', VOICEMAIL_GENERAL.fromString],
    ['MailCommand', VOICEMAIL_GENERAL.mailCommand],
    ['Language', ''],
    ['TimeZone', ''],
    ['Callback', ''],
    ['Dialout', ''],
    ['UniqueID', ''],
    ['ExitContext', ''],
    ['SayDurationMinimum', 2],
    ['SayEnvelope', 'Yes'],
    ['SayCID', 'No'],
    ['AttachMessage', box.attach === false ? 'No' : 'Yes'],
    ['AttachmentFormat', ''],
    ['DeleteMessage', 'No'],
    ['VolumeGain', '0.00'],
    ['CanReview', 'No'],
    ['CanMarkUrgent', 'Yes'],
    ['CallOperator', 'No'],
    ['MaxMessageCount', VOICEMAIL_GENERAL.maxMessageCount],
    ['MaxMessageLength', VOICEMAIL_GENERAL.maxMessageLength],
    ['NewMessageCount', c.new + c.urgent],
    ['OldMessageCount', c.old],
  ];
  return `Event: ${event}\r\n${idText}${fields.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

export const voicemailUsersList: ActionHandler = async ({ req, state, reply }) => {
  const boxes = await state.boxes();
  if (boxes.length === 0) {
    reply(ack(req, 'There are no voicemail users currently defined.'));
    return;
  }
  let out = listAck(req, 'Voicemail user list will follow');
  for (const box of boxes) out += await userEntry(state, 'VoicemailUserEntry', actionIdLine(req), box);
  reply(out + listComplete(req, 'VoicemailUserEntryComplete', boxes.length));
};

export const voicemailUserStatus: ActionHandler = async ({ req, state, reply }) => {
  const context = req.get('Context');
  const mailbox = req.get('Mailbox');
  if (context === '' || mailbox === '') {
    reply(error(req, "Need 'Context' and 'Mailbox' parameters."));
    return;
  }
  const box = await state.findBox(context, mailbox);
  if (!box) {
    reply(ack(req, 'There is no voicemail user of the given info.'));
    return;
  }
  const entry = await userEntry(state, 'VoicemailUserDetail', actionIdLine(req), box);
  reply(listAck(req, 'Voicemail user detail will follow') + entry + listComplete(req, 'VoicemailUserDetailComplete', 1));
};

// ---------------------------------------------------------------------------------------------
// Messages

/**
 * VoicemailBoxSummary: opens all twelve folders in app_voicemail's order (creating them, and
 * resequencing gaps), one VoicemailBoxDetail per message in number order. Asterisk would add a
 * msg_id to an envelope that has none and rewrite the file; the test server lists it with an
 * empty ID instead (every captured envelope has one).
 */
export const voicemailBoxSummary: ActionHandler = async ({ req, state, reply }) => {
  const context = req.get('Context');
  const mailbox = req.get('Mailbox');
  if (context === '' || mailbox === '') {
    reply(error(req, "Need 'Context' and 'Mailbox' parameters."));
    return;
  }
  const box = await state.findBox(context, mailbox);
  if (!box) {
    reply(ack(req, 'There is no voicemail user matching the given user.'));
    return;
  }
  const ref: MailboxRef = { context: box.context, mailbox: box.mailbox };
  const idText = actionIdLine(req);
  let items = '';
  let count = 0;
  for (const folder of SPOOL_FOLDERS) {
    for (const msg of await openFolder(state.spoolDir, ref, folder)) {
      const env = await readEnvelope(msg.txtPath);
      const v = (k: string): string => env.get(k) ?? '';
      items +=
        `Event: VoicemailBoxDetail\r\n${idText}Folder: ${folder}\r\nCallerID: ${v('callerid')}\r\n` +
        `Date: ${v('origdate')}\r\nDuration: ${v('duration')}\r\nFlag: ${v('flag')}\r\nID: ${v('msg_id')}\r\n\r\n`;
      count++;
    }
  }
  reply(listAck(req, 'Voicemail box detail will follow') + items + listComplete(req, 'VoicemailBoxDetailComplete', count));
};

/** The `X not specified, required` checks of manager_voicemail_move/remove, in their order. */
function missing(ctx: ActionContext, names: readonly string[]): boolean {
  for (const name of names) {
    if (ctx.req.get(name) === '') {
      ctx.reply(error(ctx.req, `${name} not specified, required`));
      return true;
    }
  }
  return false;
}

/**
 * vm_msg_move / vm_msg_remove with one ID: find the user, open the folder (resequencing it),
 * find the message by msg_id, copy it (move only), then close_mailbox deletes it and renumbers
 * the folder; finally notify_new_state publishes MWI. Any failure answers Success with
 * `Message ... failed\n`: the stray LF is app_voicemail's own (astman_send_ack(s, m, "...\n")).
 */
async function moveOrRemove(ctx: ActionContext, kind: 'move' | 'remove'): Promise<void> {
  const { req, state } = ctx;
  const verb = kind === 'move' ? 'move' : 'remove';
  const done = async (ok: boolean, ref?: MailboxRef): Promise<void> => {
    ctx.reply(ack(req, `Message ${verb} ${ok ? 'successful' : 'failed'}\n`));
    if (ok && ref) ctx.emit(...(await publishCounts(state, `${ref.mailbox}@${ref.context}`)));
  };
  const from = folderByName(req.get('Folder'));
  const to = kind === 'move' ? folderByName(req.get('ToFolder')) : undefined;
  if (!from || (kind === 'move' && !to)) return done(false);
  const box = await state.findBox(req.get('Context'), req.get('Mailbox'));
  if (!box) return done(false);
  const ref: MailboxRef = { context: box.context, mailbox: box.mailbox };
  const messages = await openFolder(state.spoolDir, ref, from);
  const msg = messages.find((m) => m.msgId === req.get('ID'));
  if (!msg) return done(false);
  if (to) await copyToFolder(state.spoolDir, ref, from, msg, to);
  await removeFromFolder(state.spoolDir, ref, from, msg.msgnum);
  return done(true, ref);
}

export const voicemailMove: ActionHandler = async (ctx) => {
  if (missing(ctx, ['Mailbox', 'Context', 'Folder', 'ID', 'ToFolder'])) return;
  await moveOrRemove(ctx, 'move');
};

export const voicemailRemove: ActionHandler = async (ctx) => {
  if (missing(ctx, ['Mailbox', 'Context', 'Folder', 'ID'])) return;
  await moveOrRemove(ctx, 'remove');
};

