/**
 * The manager core's own actions (main/manager.c), as far as vmbridge uses them.
 */
import { successfulAuth, parseEventMask, ALL_EVENTS, EVENT_CLASSES, pingTimestamp } from './events.js';
import type { ActionHandler, FakeChannel } from './context.js';
import { ack, actionIdLine, error, listAck, listComplete, response, startAck, fieldLines } from './wire.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * action_login: a wrong secret costs a 1 s sleep, then `Authentication failed` and the connection
 * is closed. On success: the ack, FullyBooted (only if this session gets `system` events), then
 * the SuccessfulAuth security event for every session that reads `security`, this one included.
 * No `Events:` header means the user's read permission (here: all).
 */
export const login: ActionHandler = async ({ req, session, state, reply, emit }) => {
  if (session.authenticated) {
    reply(ack(req, 'Already authenticated'));
    return;
  }
  const username = req.get('Username');
  const user = state.users.find((u) => u.username === username);
  // Only plaintext Secret; MD5 (Challenge + Key) is not modelled.
  if (username === '' || !user || req.get('Secret') !== user.secret) {
    await sleep(state.authFailureDelayMs);
    reply(error(req, 'Authentication failed'));
    return 'close';
  }
  session.authenticated = true;
  session.username = username;
  session.sessionTv = new Date();
  const events = req.get('Events');
  session.eventMask = events === '' ? ALL_EVENTS : parseEventMask(events);
  reply(ack(req, 'Authentication accepted'));
  if ((session.eventMask & EVENT_CLASSES.system) !== 0) {
    const seconds = Math.floor((Date.now() - state.startedAt) / 1000);
    reply(`Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: ${seconds}\r\nLastReload: ${seconds}\r\nStatus: Fully Booted\r\n\r\n`);
  }
  emit(successfulAuth(session.facts(), new Date()));
};

/** action_logoff: Goodbye, then the session ends. */
export const logoff: ActionHandler = ({ req, reply }) => {
  reply(response(req, 'Goodbye', 'Thanks for all the fish.'));
  return 'close';
};

/** action_ping: written piecemeal, `Timestamp` is `%ld.%06lu` of the current time. */
export const ping: ActionHandler = ({ req, reply }) => {
  reply(`Response: Success\r\n${actionIdLine(req)}Ping: Pong\r\nTimestamp: ${pingTimestamp()}\r\n\r\n`);
};

/**
 * action_filter with a legacy filter (no MatchCriteria): a POSIX regex over the whole event
 * text, `!` in front makes it an exclude filter. JavaScript regexes stand in for POSIX ERE.
 */
export const filter: ActionHandler = ({ req, session, reply }) => {
  if (req.get('Operation').toLowerCase() !== 'add') {
    reply(error(req, 'Unknown operation'));
    return;
  }
  if (req.get('MatchCriteria') !== '') {
    reply(error(req, 'AMI test server: Filter with MatchCriteria is not modelled'));
    return;
  }
  const raw = req.get('Filter');
  const exclude = raw.startsWith('!');
  const pattern = exclude ? raw.slice(1) : raw;
  if (pattern === '') {
    reply(error(req, 'Filter was formatted incorrectly.  Check the syntax of the filter given.'));
    return;
  }
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch {
    reply(error(req, 'Filter did not compile.  Check the syntax of the filter given.'));
    return;
  }
  (exclude ? session.excludeFilters : session.includeFilters).push(re);
  reply(ack(req, 'Success'));
};

/** action_mailboxcount: the provider's inboxcount2; the Mailbox value is echoed as given. */
export const mailboxCount: ActionHandler = async ({ req, state, reply }) => {
  const mailbox = req.get('Mailbox');
  if (mailbox === '') {
    reply(error(req, 'Mailbox not specified'));
    return;
  }
  const c = await state.provider.inboxCount(mailbox);
  reply(
    `${startAck(req)}Message: Mailbox Message Count\r\nMailbox: ${mailbox}\r\n` +
      `UrgMessages: ${c.urgent}\r\nNewMessages: ${c.new}\r\nOldMessages: ${c.old}\r\n\r\n`,
  );
};

/** action_mailboxstatus: `Waiting` is ast_app_has_voicemail (INBOX or Urgent not empty). */
export const mailboxStatus: ActionHandler = async ({ req, state, reply }) => {
  const mailbox = req.get('Mailbox');
  if (mailbox === '') {
    reply(error(req, 'Mailbox not specified'));
    return;
  }
  const waiting = (await state.provider.hasVoicemail(mailbox)) ? 1 : 0;
  reply(`${startAck(req)}Message: Mailbox Status\r\nMailbox: ${mailbox}\r\nWaiting: ${waiting}\r\n\r\n`);
};

// ---------------------------------------------------------------------------------------------
// CoreShowChannels

/** ast_state2str for the states a test is likely to use. */
const STATE_NAMES: Record<number, string> = { 0: 'Down', 1: 'Rsrvd', 2: 'OffHook', 3: 'Dialing', 4: 'Ring', 5: 'Ringing', 6: 'Up', 7: 'Busy' };

const hms = (seconds: number): string =>
  [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60].map((n) => String(n).padStart(2, '0')).join(':');

/**
 * The captures hold no CoreShowChannel event (no channel existed when they were made). The layout
 * is action_coreshowchannels in main/manager.c: the channel snapshot block of
 * ast_manager_build_channel_state_string_prefix (main/manager_channels.c; the same block the
 * captured Newchannel events show), then Application, ApplicationData, Duration and BridgeId.
 */
function coreShowChannel(idText: string, c: FakeChannel, since: number, index: number, startedAt: number): string {
  const state = c.state ?? 6;
  const uniqueid = c.uniqueid ?? `${Math.floor(startedAt / 1000)}.${index}`;
  const duration = c.durationSec ?? Math.floor((Date.now() - since) / 1000);
  return (
    `Event: CoreShowChannel\r\n${idText}` +
    fieldLines([
      ['Channel', c.channel],
      ['ChannelState', state],
      ['ChannelStateDesc', STATE_NAMES[state] ?? 'Unknown'],
      ['CallerIDNum', c.callerIdNum ?? '<unknown>'],
      ['CallerIDName', c.callerIdName ?? '<unknown>'],
      ['ConnectedLineNum', '<unknown>'],
      ['ConnectedLineName', '<unknown>'],
      ['Language', 'en'],
      ['AccountCode', ''],
      ['Context', c.context ?? 'default'],
      ['Exten', c.exten ?? 's'],
      ['Priority', c.priority ?? 1],
      ['Uniqueid', uniqueid],
      ['Linkedid', c.linkedid ?? uniqueid],
      ['Application', c.application],
      ['ApplicationData', c.appData],
      ['Duration', hms(duration)],
      ['BridgeId', c.bridgeId ?? ''],
    ]) +
    '\r\n'
  );
}

export const coreShowChannels: ActionHandler = ({ req, state, reply }) => {
  const idText = actionIdLine(req);
  const channels = state.channels();
  let out = listAck(req, 'Channels will follow');
  channels.forEach(({ channel, since }, i) => {
    out += coreShowChannel(idText, channel, since, i, state.startedAt);
  });
  reply(out + listComplete(req, 'CoreShowChannelsComplete', channels.length));
};
