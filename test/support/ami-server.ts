/**
 * An AMI server for tests that answers like Asterisk 22 (AMI 11.0.0), byte for byte, for the
 * actions vmbridge uses. Debian ships no Asterisk, so this stands in for it; every behaviour here
 * is taken from the captured transcripts (test/fixtures/asterisk/ami/) or, where they are
 * silent, from Asterisk's source (main/manager.c, apps/app_voicemail.c, res/res_mwi_external*.c).
 *
 * Two profiles, as the captures: `voicemail` (app_voicemail: counts and moves on the real spool
 * directory, under the real folder lock) and `mwiext` (res_mwi_external_ami: counts set with
 * MWIUpdate). Actions Asterisk has but this server does not model answer with an error that says
 * so, never with a made-up success; unknown actions get Asterisk's `Invalid/unknown command`.
 *
 * One opt-in mode goes beyond the captures: `mailboxStateChange` models a newer Asterisk (20.23,
 * 22.13, 23.7, 24.1 or later) whose res_manager_devicestate has the MailboxStateChange action.
 * That mode is MODELLED FROM ASTERISK'S SOURCE, NOT FROM A CAPTURE (test/support/ami/
 * devicestate-actions.ts says what was read). Without the option the server is the captured
 * 22.10.1 and answers that action `Invalid/unknown command`, byte for byte as captured.
 *
 * Test controls: port, close(), dropConnections(), received, pause()/resume(), setChannels(),
 * emitMessageWaiting(), mwiState().
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { MailboxRef } from '../../src/spool/types.js';
import type { ActionContext, ActionHandler, AmiUser, FakeChannel, ServerState, VoicemailBox, VoicemailProvider } from './ami/context.js';
import { coreShowChannels, filter, login, logoff, mailboxCount, mailboxStatus, ping } from './ami/core-actions.js';
import { mailboxStateChange, parseEntityId } from './ami/devicestate-actions.js';
import { requestBadFormat, type ServerEvent } from './ami/events.js';
import { MwiState } from './ami/mwi-state.js';
import { externalProvider, mwiDelete, mwiGet, mwiUpdate } from './ami/mwiext-actions.js';
import { AmiSession } from './ami/session.js';
import { hasVoicemail, inboxCount, mailboxDirExists, mailboxDirs } from './ami/spool.js';
import {
  publishCounts,
  pollMailbox,
  seedMwi,
  voicemailBoxSummary,
  voicemailMove,
  voicemailRefresh,
  voicemailRemove,
  voicemailUsersList,
  voicemailUserStatus,
} from './ami/voicemail-actions.js';
import { BANNER, error, type AmiRequest } from './ami/wire.js';

export type { AmiUser, FakeChannel, VoicemailBox } from './ami/context.js';

export interface AmiServerOptions {
  /** The spool root (`<spool>/voicemail/<context>/<mailbox>/...`). */
  readonly spoolDir: string;
  /** manager.conf users; default one user `bridge` / `bridge` with read=all, write=all, as captured. */
  readonly users?: readonly AmiUser[];
  readonly profile?: 'voicemail' | 'mwiext';
  /** voicemail.conf's mailboxes. Default: every `<context>/<mailbox>` directory of the spool. */
  readonly voicemailBoxes?: readonly VoicemailBox[];
  /** asterisk.conf lockmode; only the default, lockfile, is modelled. */
  readonly lockmode?: 'lockfile';
  /** Asterisk sleeps 1 s before refusing a login. */
  readonly authFailureDelayMs?: number;
  /** Listen on this port (to bring a closed server back where clients expect it). Default: a free one. */
  readonly port?: number;
  /**
   * Opt-in, MODELLED FROM SOURCE, NOT FROM A CAPTURE: a newer Asterisk (20.23, 22.13, 23.7, 24.1
   * or later) that has MailboxStateChange (res_manager_devicestate), in either profile.
   * `entityId` is that Asterisk's own entity ID (asterisk.conf `entityid`, `xx:xx:xx:xx:xx:xx`);
   * updates claiming it are refused, as Asterisk refuses them. Its DeviceStateChange action, added
   * in the same release, answers "not modelled". Everything else, the banner included (the AMI
   * version of those releases was not in the source read), stays as captured from 22.10.1.
   */
  readonly mailboxStateChange?: { readonly entityId: string };
  /**
   * AMI over TLS, as manager.conf `tlsenable=yes` with `tlscertfile`/`tlsprivatekey` (PEM text):
   * the banner comes after the handshake. Without it, plain TCP as `enabled=yes`.
   */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** One action as the server parsed it. */
export interface ReceivedAction {
  /** Which connection (1, 2, ... in accept order). */
  readonly session: number;
  readonly action: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Case-insensitive header lookup, as Asterisk does it; '' when absent. */
  get(name: string): string;
}

/** Real core actions the server does not model: they answer an error that says so. */
const NOT_MODELLED = ['Challenge', 'Events', 'Originate', 'Command', 'Reload', 'ModuleLoad', 'Status', 'Hangup', 'Redirect', 'Setvar', 'Getvar', 'ListCommands', 'CoreStatus', 'CoreSettings', 'WaitEvent', 'UserEvent', 'PJSIPNotify'];

const COMMON: Record<string, ActionHandler> = {
  login,
  logoff,
  ping,
  filter,
  mailboxcount: mailboxCount,
  mailboxstatus: mailboxStatus,
  coreshowchannels: coreShowChannels,
};

const VOICEMAIL: Record<string, ActionHandler> = {
  voicemailrefresh: voicemailRefresh,
  voicemailboxsummary: voicemailBoxSummary,
  voicemailmove: voicemailMove,
  voicemailremove: voicemailRemove,
  voicemailuserslist: voicemailUsersList,
  voicemailuserstatus: voicemailUserStatus,
};

const MWIEXT: Record<string, ActionHandler> = {
  mwiupdate: mwiUpdate,
  mwiget: mwiGet,
  mwidelete: mwiDelete,
};

export class AmiTestServer {
  /** Every action received, in arrival order (also while paused), Login included. */
  readonly received: ReceivedAction[] = [];
  private readonly sessions = new Set<AmiSession>();
  private nextSession = 1;
  private paused = false;
  private fakeChannels: Array<{ channel: FakeChannel; since: number }> = [];
  private readonly handlers: Record<string, ActionHandler>;
  private readonly state: ServerState;
  /** The opt-in mode modelled from source (options.mailboxStateChange). */
  private readonly newerAsterisk: boolean;

  private constructor(
    private readonly server: Server,
    opts: AmiServerOptions,
  ) {
    const profile = opts.profile ?? 'voicemail';
    const external = new Map<string, { new: number; old: number }>();
    const spoolDir = opts.spoolDir;
    const provider: VoicemailProvider =
      profile === 'voicemail'
        ? { inboxCount: (spec) => inboxCount(spoolDir, spec), hasVoicemail: (spec) => hasVoicemail(spoolDir, spec) }
        : externalProvider(external);
    const boxes = async (): Promise<VoicemailBox[]> => [...(opts.voicemailBoxes ?? (await mailboxDirs(spoolDir)))];
    const newer = opts.mailboxStateChange;
    const entityId = newer ? parseEntityId(newer.entityId) : undefined;
    if (newer && (!entityId || !/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(newer.entityId))) {
      throw new Error(`mailboxStateChange.entityId ${JSON.stringify(newer.entityId)} is not xx:xx:xx:xx:xx:xx`);
    }
    this.newerAsterisk = newer !== undefined;
    this.state = {
      profile,
      spoolDir,
      users: opts.users ?? [{ username: 'bridge', secret: 'bridge' }],
      startedAt: Date.now(),
      authFailureDelayMs: opts.authFailureDelayMs ?? 1_000,
      mwi: new MwiState(),
      provider,
      boxes,
      // find_user: exact context and mailbox.
      findBox: async (context, mailbox) => {
        if (opts.voicemailBoxes) return opts.voicemailBoxes.find((b) => b.context === context && b.mailbox === mailbox);
        return (await mailboxDirExists(spoolDir, context, mailbox)) ? { context, mailbox } : undefined;
      },
      channels: () => this.fakeChannels,
      external,
      ...(entityId ? { entityId } : {}),
    };
    this.handlers = { ...COMMON, ...(profile === 'voicemail' ? VOICEMAIL : MWIEXT), ...(newer ? { mailboxstatechange: mailboxStateChange } : {}) };
    // A TLS server's sockets are ready for the banner only once the handshake is done.
    server.on(opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => this.accept(socket));
  }

  static async start(opts: AmiServerOptions): Promise<AmiTestServer> {
    const server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }) : createServer();
    // A client that refuses the certificate ends the handshake: nothing to do for the server.
    if (opts.tls) server.on('tlsClientError', () => undefined);
    const ami = new AmiTestServer(server, opts);
    if (ami.state.profile === 'voicemail') await seedMwi(ami.state);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return ami;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Resets every connection (the server keeps listening): for reconnect tests. */
  dropConnections(): void {
    for (const s of this.sessions) s.socket.destroy();
    this.sessions.clear();
  }

  /** Stops answering: actions are received and recorded but not run until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const s of this.sessions) s.pump();
  }

  /** The channels CoreShowChannels lists from now on. */
  setChannels(channels: readonly FakeChannel[]): void {
    const now = Date.now();
    this.fakeChannels = channels.map((channel) => ({ channel, since: now }));
  }

  /**
   * What Asterisk's poller does for a mailbox with an MWI subscriber: recount and publish
   * MessageWaiting if the counts changed (voicemail profile). `force` publishes anyway, as after
   * a message was left. In the mwiext profile the stored counts are published again.
   * Resolves true if an event was published.
   */
  async emitMessageWaiting(ref: MailboxRef, opts: { force?: boolean } = {}): Promise<boolean> {
    const id = `${ref.mailbox}@${ref.context}`;
    let events: ServerEvent[];
    if (this.state.profile === 'mwiext') {
      const m = this.state.external.get(id) ?? { new: 0, old: 0 };
      events = this.state.mwi.publish(id, m.new, m.old, m.new > 0);
    } else {
      events = opts.force ? await publishCounts(this.state, id) : await pollMailbox(this.state, id);
    }
    this.broadcast(events);
    return events.length > 0;
  }

  /**
   * The MWI state this Asterisk holds for a mailbox id (`1000@default`), as its phones would be
   * told it: the last published new/old, or undefined if none was ever published.
   */
  mwiState(mailbox: string): { readonly new: number; readonly old: number } | undefined {
    const s = this.state.mwi.get(mailbox);
    return s ? { new: s.new, old: s.old } : undefined;
  }

  // -------------------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const session = new AmiSession(this.nextSession++, socket, {
      run: (s, req) => this.run(s, req),
      isPaused: () => this.paused,
      received: (s, req) => this.record(s, req),
    });
    this.sessions.add(session);
    socket.on('close', () => this.sessions.delete(session));
    socket.write(BANNER, 'latin1');
  }

  private record(session: AmiSession, req: AmiRequest): void {
    this.received.push({
      session: session.id,
      action: req.getNonEmpty('Action'),
      headers: req.headers(),
      get: (name) => req.get(name),
    });
  }

  private broadcast(events: readonly ServerEvent[]): void {
    for (const e of events) for (const s of this.sessions) s.deliver(e);
  }

  /** process_message: checks in Asterisk's order, then the handler, then the queued events. */
  private async run(session: AmiSession, req: AmiRequest): Promise<'keep' | 'close'> {
    const pending: ServerEvent[] = [];
    const ctx: ActionContext = {
      req,
      session,
      state: this.state,
      reply: (text) => session.write(text),
      emit: (...events) => pending.push(...events),
    };
    const verdict = await this.dispatch(ctx);
    this.broadcast(pending);
    return verdict === 'close' ? 'close' : 'keep';
  }

  private async dispatch(ctx: ActionContext): Promise<'close' | void> {
    const { req, session } = ctx;
    if (req.parseError) {
      ctx.reply(error(req, req.parseError));
      return;
    }
    const action = req.getNonEmpty('Action');
    if (action === '') {
      ctx.reply(error(req, 'Missing action in request'));
      if (session.authenticated) ctx.emit(requestBadFormat(session.facts(), 'NONE', new Date()));
      return;
    }
    const key = action.toLowerCase();
    if (!session.authenticated && key !== 'login' && key !== 'logoff' && key !== 'challenge') {
      // Asterisk also raises RequestNotAllowed here; no capture shows its fields, so it is left out.
      ctx.reply(error(req, 'Permission denied'));
      return;
    }
    const handler = this.handlers[key];
    if (handler) return handler(ctx);
    const notModelled = [...NOT_MODELLED, ...(this.state.profile === 'voicemail' ? ['VoicemailForward'] : []), ...(this.newerAsterisk ? ['DeviceStateChange'] : [])];
    if (notModelled.some((name) => name.toLowerCase() === key)) {
      ctx.reply(error(req, `AMI test server: ${action} is not modelled`));
      return;
    }
    // report_req_bad_format, then the error (fixtures ami/voicemail/16, 17 and the listener's RequestBadFormat).
    ctx.reply(error(req, `Invalid/unknown command: ${action}. Use Action: ListCommands to show available commands.`));
    ctx.emit(requestBadFormat(session.facts(), action, new Date()));
  }
}

/** Starts a server on 127.0.0.1 on a free port. */
export function startAmiServer(opts: AmiServerOptions): Promise<AmiTestServer> {
  return AmiTestServer.start(opts);
}
