/**
 * AmiClient and the typed AMI helpers against the AMI test server (which answers byte for byte
 * like Asterisk 22, see test/unit/ami-server-fidelity.test.ts), on a real spool directory.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { UnsafeNameError } from '../../src/errors.js';
import {
  AmiReportedFailureError,
  coreShowChannels,
  mailboxCount,
  mwiUpdate,
  voicemailBoxSummary,
  voicemailMove,
  voicemailRefresh,
  voicemailRemove,
  voiceMailMainBusy,
} from '../../src/mwi/ami-actions.js';
import {
  AmiActionError,
  AmiAuthError,
  AmiClient,
  AmiConnectionError,
  AmiTimeoutError,
  AmiUnsafeValueError,
  type AmiClientOptions,
  type AmiEvent,
} from '../../src/mwi/ami-client.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startAmiServer, type AmiServerOptions, type AmiTestServer } from '../support/ami-server.js';
import { holdLock, leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { waitFor } from '../support/wait.js';

const ALICE: MailboxRef = { context: 'default', mailbox: '1000' };
const BOB: MailboxRef = { context: 'default', mailbox: '1001' };
const BOXES = [
  { context: 'default', mailbox: '1000', fullName: 'Alice Example' },
  { context: 'default', mailbox: '1001', fullName: 'Bob Example' },
];

interface Fixture {
  readonly dir: string;
  readonly server: AmiTestServer;
  readonly clients: AmiClient[];
  client(opts?: Partial<AmiClientOptions>): Promise<AmiClient>;
}

async function setUp(opts: Partial<AmiServerOptions> = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'vmb-ami-client-'));
  const server = await startAmiServer({ spoolDir: dir, voicemailBoxes: BOXES, authFailureDelayMs: 20, ...opts });
  const clients: AmiClient[] = [];
  return {
    dir,
    server,
    clients,
    async client(more = {}) {
      const c = new AmiClient({ host: '127.0.0.1', port: server.port, username: 'bridge', secret: 'bridge', reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...more });
      clients.push(c);
      await c.connect();
      return c;
    },
  };
}

async function tearDown(f: Fixture | undefined): Promise<void> {
  if (!f) return;
  for (const c of f.clients) await c.close();
  await f.server.close();
  await rm(f.dir, { recursive: true, force: true });
}

/** Collects a client's events; `next` waits for one that matches. */
function events(client: AmiClient): { readonly all: AmiEvent[]; next(name: string, where?: (e: AmiEvent) => boolean): Promise<AmiEvent> } {
  const all: AmiEvent[] = [];
  client.on('event', (e) => all.push(e));
  return {
    all,
    next: (name, where = () => true) => waitFor(`event ${name}`, () => all.find((e) => e.event === name && where(e)), { timeoutMs: 3_000, intervalMs: 10 }),
  };
}

describe('AmiClient: session', () => {
  let f: Fixture | undefined;
  before(async () => {
    f = await setUp();
  });
  after(async () => tearDown(f));

  it('logs in with Events: on and reads the banner version', async () => {
    const c = await f!.client();
    assert.equal(c.connected, true);
    assert.equal(c.version, '11.0.0');
    const loginReq = f!.server.received.at(-1);
    assert.equal(loginReq?.action, 'Login');
    assert.equal(loginReq?.get('Username'), 'bridge');
    assert.equal(loginReq?.get('Events'), 'on');
    assert.match(loginReq?.get('ActionID') ?? '', /^vmb_[0-9a-f]{12}-1$/);
  });

  it('refuses a wrong secret with AmiAuthError that does not show the secret', async () => {
    await assert.rejects(f!.client({ secret: 'not-the-secret' }), (err: unknown) => {
      assert.ok(err instanceof AmiAuthError);
      assert.match(err.message, /Authentication failed/);
      assert.doesNotMatch(err.message, /not-the-secret/);
      return true;
    });
  });

  it('asks for no events with events: false', async () => {
    const c = await f!.client({ events: false });
    assert.equal(f!.server.received.at(-1)?.get('Events'), 'off');
    const seen = events(c);
    await f!.server.emitMessageWaiting(ALICE, { force: true });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen.all, []);
  });

  it('answers Ping with the reply headers in order', async () => {
    const c = await f!.client();
    const r = await c.action('Ping');
    assert.equal(r.response, 'Success');
    assert.deepEqual(r.reply.headers.map(([n]) => n), ['Response', 'ActionID', 'Ping', 'Timestamp']);
    assert.equal(r.reply.get('ping'), 'Pong', 'lookup is case-insensitive');
  });

  it('rejects Response: Error as AmiActionError carrying the reply', async () => {
    const c = await f!.client();
    await assert.rejects(c.action('MWIUpdate', { Mailbox: '1000@default', NewMessages: '1' }), (err: unknown) => {
      assert.ok(err instanceof AmiActionError);
      assert.match(err.response.message ?? '', /^Invalid\/unknown command: MWIUpdate\./);
      return true;
    });
  });

  it('runs concurrent actions with distinct ActionIDs and matches every answer', async () => {
    const c = await f!.client();
    await leaveVoicemail(f!.dir, ALICE);
    await leaveVoicemail(f!.dir, ALICE);
    await leaveVoicemail(f!.dir, BOB);
    const before = f!.server.received.length;
    const mailboxes = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? BOB : i % 3 === 1 ? ALICE : { context: 'default', mailbox: `20${i}` }));
    const results = await Promise.all(mailboxes.map((ref) => mailboxCount(c, ref)));
    results.forEach((r, i) => {
      const expected = i % 3 === 0 ? 1 : i % 3 === 1 ? 2 : 0;
      assert.equal(r.new, expected, `answer ${i} belongs to its own request`);
    });
    const ids = f!.server.received.slice(before).map((r) => r.get('ActionID'));
    assert.equal(ids.length, 30);
    assert.equal(new Set(ids).size, 30);
    const prefix = ids[0]?.replace(/-\d+$/, '');
    assert.ok(ids.every((id) => id.startsWith(`${prefix}-`)));
  });

  it('gives every client its own random ActionID prefix', async () => {
    const a = await f!.client();
    const b = await f!.client();
    await a.action('Ping');
    await b.action('Ping');
    const [ia, ib] = f!.server.received.slice(-2).map((r) => r.get('ActionID').replace(/-\d+$/, ''));
    assert.notEqual(ia, ib);
  });
});

describe('AmiClient: nothing unsafe reaches the wire', () => {
  let f: Fixture | undefined;
  before(async () => {
    f = await setUp();
  });
  after(async () => tearDown(f));

  it('refuses CR, LF and NUL in values and names, and bad names, before writing anything', async () => {
    const c = await f!.client();
    const before = f!.server.received.length;
    const attempts: Array<() => Promise<unknown>> = [
      () => c.action('MailboxCount', { Mailbox: '1000@default\r\nAction: Logoff' }),
      () => c.action('MailboxCount', { Mailbox: '1000@default\nAction: Logoff' }),
      () => c.action('MailboxCount', { Mailbox: '1000@default\r' }),
      () => c.action('MailboxCount', { Mailbox: '1000\0@default' }),
      () => c.action('MailboxCount', { 'Mailbox\r\nAction': 'Logoff' }),
      () => c.action('MailboxCount', { 'Mail box': '1000' }),
      () => c.action('MailboxCount', { 'Mailbox:': '1000' }),
      () => c.action('Ping\r\nAction: Logoff'),
      () => c.action('Ping', { ActionID: 'mine' }),
      () => c.action('MailboxCount', { Mailbox: 'x'.repeat(2000) }),
    ];
    for (const attempt of attempts) await assert.rejects(attempt(), AmiUnsafeValueError);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f!.server.received.length, before, 'the server received nothing');
    assert.equal((await c.action('Ping')).response, 'Success', 'the session is still usable');
  });

  it('refuses unsafe mailbox refs, folders, ids and counts in the helpers', async () => {
    const c = await f!.client();
    const before = f!.server.received.length;
    await assert.rejects(voicemailRefresh(c, { context: 'default', mailbox: '1000\r\nAction: Originate' }), UnsafeNameError);
    await assert.rejects(voicemailRefresh(c, { context: '../etc', mailbox: '1000' }), UnsafeNameError);
    await assert.rejects(mailboxCount(c, { context: 'default', mailbox: '1000&1001' }), UnsafeNameError);
    await assert.rejects(mwiUpdate(c, ALICE, { new: -1, old: 0 }), AmiUnsafeValueError);
    await assert.rejects(mwiUpdate(c, ALICE, { new: 1.5, old: 0 }), AmiUnsafeValueError);
    await assert.rejects(voicemailMove(c, ALICE, { folder: 'INBOX', id: '1-2\nAction: Logoff', toFolder: 'Old' }), AmiUnsafeValueError);
    // @ts-expect-error a folder that is not a voicemail folder
    await assert.rejects(voicemailRemove(c, ALICE, { folder: 'Trash', id: '1-00000001' }), AmiUnsafeValueError);
    assert.equal(f!.server.received.length, before);
  });

  it('refuses an unsafe secret at construction', () => {
    assert.throws(() => new AmiClient({ host: '127.0.0.1', port: 1, username: 'bridge', secret: 'x\r\nEvents: off' }), AmiUnsafeValueError);
  });
});

describe('AmiClient: timeouts, drops and reconnects', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await tearDown(f);
    f = undefined;
  });

  it('times out, removes the pending entry and drops the late answer', async () => {
    f = await setUp();
    const c = await f.client();
    f.server.pause();
    const started = Date.now();
    await assert.rejects(c.action('Ping', {}, { timeoutMs: 150 }), (err: unknown) => err instanceof AmiTimeoutError && err.action === 'Ping');
    assert.ok(Date.now() - started >= 140);
    f.server.resume();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await c.action('Ping')).response, 'Success', 'the late Pong does not answer the next Ping');
  });

  it('applies the default 5 s timeout when none is given', async () => {
    f = await setUp();
    const c = await f.client({ actionTimeoutMs: 120 });
    f.server.pause();
    await assert.rejects(c.action('Ping'), AmiTimeoutError);
    f.server.resume();
  });

  it('does not leak the items of a list that timed out to event subscribers', async () => {
    f = await setUp();
    await leaveVoicemail(f.dir, ALICE);
    const c = await f.client();
    const seen = events(c);
    f.server.pause();
    await assert.rejects(c.action('VoicemailBoxSummary', { Context: 'default', Mailbox: '1000' }, { list: true, timeoutMs: 100 }), AmiTimeoutError);
    f.server.resume();
    await c.action('Ping');
    assert.deepEqual(seen.all.filter((e) => e.event?.startsWith('VoicemailBoxDetail')), []);
  });

  it('reconnects with backoff after the connection drops, logs in again and works', async () => {
    f = await setUp();
    const c = await f.client();
    const states: string[] = [];
    c.on('disconnected', () => states.push('disconnected'));
    c.on('reconnecting', ({ attempt }) => states.push(`reconnecting ${attempt}`));
    c.on('connected', () => states.push('connected'));
    const logins = (): number => f!.server.received.filter((r) => r.action === 'Login').length;
    const before = logins();
    f.server.dropConnections();
    await waitFor('reconnect', () => c.connected && states.includes('connected'), { timeoutMs: 3_000, intervalMs: 10 });
    assert.deepEqual(states, ['disconnected', 'reconnecting 1', 'connected']);
    assert.equal(logins(), before + 1);
    assert.equal((await c.action('Ping')).response, 'Success');
  });

  it('keeps trying with capped exponential delays while logins go unanswered', async () => {
    f = await setUp();
    const c = await f.client({ actionTimeoutMs: 80 });
    const delays: number[] = [];
    c.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    f.server.pause(); // every login attempt times out
    f.server.dropConnections();
    await waitFor('four attempts', () => delays.length >= 4, { timeoutMs: 5_000, intervalMs: 10 });
    f.server.resume();
    await waitFor('reconnected', () => c.connected, { timeoutMs: 5_000, intervalMs: 10 });
    // Attempt n waits between half and all of min(200, 20 * 2^(n-1)).
    delays.slice(0, 4).forEach((d, i) => {
      const ceiling = Math.min(200, 20 * 2 ** i);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${i + 1} waited ${d} ms, ceiling ${ceiling}`);
    });
    assert.equal((await c.action('Ping')).response, 'Success');
  });

  it('fails an action in flight when the connection drops and never sends it again', async () => {
    f = await setUp();
    const c = await f.client();
    f.server.pause();
    const pending = c.action('VoicemailRefresh', { Context: 'default', Mailbox: '1000' });
    await waitFor('the action to arrive', () => f!.server.received.some((r) => r.action === 'VoicemailRefresh'), { intervalMs: 5 });
    const id = f.server.received.find((r) => r.action === 'VoicemailRefresh')?.get('ActionID');
    f.server.dropConnections();
    await assert.rejects(pending, AmiConnectionError);
    f.server.resume();
    await waitFor('reconnect', () => c.connected, { timeoutMs: 3_000, intervalMs: 10 });
    await c.action('Ping');
    assert.equal(f.server.received.filter((r) => r.get('ActionID') === id).length, 1, 'not replayed');
  });

  it('rejects actions while disconnected instead of queueing them', async () => {
    f = await setUp();
    const c = await f.client({ reconnect: false });
    const down = new Promise((r) => c.once('disconnected', r));
    f.server.dropConnections();
    await down;
    await assert.rejects(c.action('Ping'), AmiConnectionError);
  });

  it('close() logs off, and later actions fail', async () => {
    f = await setUp();
    const c = await f.client();
    await c.close();
    assert.equal(f.server.received.at(-1)?.action, 'Logoff');
    assert.equal(c.connected, false);
    await assert.rejects(c.action('Ping'), AmiConnectionError);
  });

  it('reports a server that is not there as AmiConnectionError', async () => {
    f = await setUp();
    const port = f.server.port;
    await f.server.close();
    const c = new AmiClient({ host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', connectTimeoutMs: 500 });
    await assert.rejects(c.connect(), AmiConnectionError);
    await c.close();
  });
});

describe('AMI helpers on the voicemail profile', () => {
  let f: Fixture | undefined;
  before(async () => {
    f = await setUp();
  });
  after(async () => tearDown(f));

  it('VoicemailRefresh publishes MessageWaiting once for a change made behind Asterisk\'s back', async () => {
    const c = await f!.client();
    const seen = events(c);
    await leaveVoicemail(f!.dir, BOB);
    await voicemailRefresh(c, BOB);
    const mw = await seen.next('MessageWaiting', (e) => e.get('Mailbox') === '1001@default');
    assert.deepEqual(mw.headers, [['Event', 'MessageWaiting'], ['Privilege', 'call,all'], ['Mailbox', '1001@default'], ['Waiting', '1'], ['New', '1'], ['Old', '0']]);
    await seen.next('DeviceStateChange', (e) => e.get('Device') === 'MWI:1001@default');
    const count = seen.all.length;
    await voicemailRefresh(c, BOB);
    await c.action('Ping');
    assert.equal(seen.all.length, count, 'no change, no event');
  });

  it('counts urgent messages apart, as MailboxCount does', async () => {
    const c = await f!.client();
    await leaveVoicemail(f!.dir, ALICE, { urgent: true });
    assert.deepEqual(await mailboxCount(c, ALICE), { urgent: 1, new: 0, old: 0 });
  });

  it('collects a list: VoicemailBoxSummary with its items and the Complete event', async () => {
    const c = await f!.client();
    await leaveVoicemail(f!.dir, ALICE, { callerid: '"Carol" <5550001>', duration: 7 });
    const r = await c.action('VoicemailBoxSummary', { Context: 'default', Mailbox: '1000' }, { list: true });
    assert.equal(r.reply.get('EventList'), 'start');
    assert.equal(r.events.length, 2);
    assert.equal(r.complete?.event, 'VoicemailBoxDetailComplete');
    assert.equal(r.complete?.get('ListItems'), '2');
    const entries = await voicemailBoxSummary(c, ALICE);
    assert.deepEqual(entries.map((e) => [e.folder, e.flag]), [['INBOX', ''], ['Urgent', 'Urgent']]);
    assert.equal(entries[0]?.callerId, '"Carol" <5550001>');
    assert.equal(entries[0]?.duration, '7');
  });

  it('treats an unknown mailbox in VoicemailBoxSummary (Success without a list) as a failure', async () => {
    const c = await f!.client();
    await assert.rejects(voicemailBoxSummary(c, { context: 'default', mailbox: '4242' }), AmiReportedFailureError);
  });

  it('VoicemailMove moves by msg_id and Asterisk publishes the new counts', async () => {
    const c = await f!.client();
    const seen = events(c);
    const [msg] = await listFolder(f!.dir, ALICE, 'INBOX');
    assert.ok(msg);
    const raw = await c.action('VoicemailMove', { Context: 'default', Mailbox: '1000', Folder: 'INBOX', ID: msg.msgId, ToFolder: 'Old' });
    assert.equal(raw.message, 'Message move successful\n', 'the stray LF reaches the caller untouched');
    assert.deepEqual((await listFolder(f!.dir, ALICE, 'Old')).map((m) => m.msgId), [msg.msgId]);
    assert.deepEqual(await listFolder(f!.dir, ALICE, 'INBOX'), []);
    const mw = await seen.next('MessageWaiting', (e) => e.get('Mailbox') === '1000@default');
    assert.deepEqual([mw.get('New'), mw.get('Old')], ['1', '1'], 'New includes the urgent message');
  });

  it('surfaces "Success" + "Message move failed" as AmiReportedFailureError', async () => {
    const c = await f!.client();
    await assert.rejects(voicemailMove(c, ALICE, { folder: 'INBOX', id: '1795347169-00000099', toFolder: 'Old' }), (err: unknown) => {
      assert.ok(err instanceof AmiReportedFailureError);
      assert.equal(err.code, 'AMI_REPORTED_FAILURE');
      assert.equal(err.response.response, 'Success');
      assert.equal(err.response.message, 'Message move failed\n');
      return true;
    });
  });

  it('VoicemailMove waits for a folder lock held by someone else, as Asterisk does', async () => {
    const c = await f!.client();
    const [msg] = await listFolder(f!.dir, ALICE, 'Old');
    assert.ok(msg);
    const held = await holdLock(join(f!.dir, 'voicemail', 'default', '1000', 'INBOX'), 300);
    const started = Date.now();
    await voicemailMove(c, ALICE, { folder: 'Old', id: msg.msgId, toFolder: 'INBOX' });
    assert.ok(Date.now() - started >= 250, 'the move waited for the lock');
    await held.released;
    assert.deepEqual((await readdir(join(f!.dir, 'voicemail', 'default', '1000', 'INBOX'))).filter((n) => n.startsWith('.lock')), []);
  });

  it('VoicemailRemove removes by msg_id; an unknown id is a reported failure', async () => {
    const c = await f!.client();
    const [msg] = await listFolder(f!.dir, ALICE, 'Urgent');
    assert.ok(msg);
    await voicemailRemove(c, ALICE, { folder: 'Urgent', id: msg.msgId });
    assert.deepEqual(await listFolder(f!.dir, ALICE, 'Urgent'), []);
    await assert.rejects(voicemailRemove(c, ALICE, { folder: 'Urgent', id: msg.msgId }), AmiReportedFailureError);
  });

  it('receives the MessageWaiting that Asterisk\'s poller publishes', async () => {
    const c = await f!.client();
    const seen = events(c);
    await leaveVoicemail(f!.dir, ALICE);
    assert.equal(await f!.server.emitMessageWaiting(ALICE), true);
    const mw = await seen.next('MessageWaiting');
    assert.equal(mw.get('Mailbox'), '1000@default');
    assert.equal(mw.get('Waiting'), '1');
  });

  it('lists channels and tells whether a caller is in VoiceMailMain for a mailbox', async () => {
    const c = await f!.client();
    assert.deepEqual(await coreShowChannels(c), []);
    f!.server.setChannels([
      { channel: 'PJSIP/1000-00000001', application: 'VoiceMailMain', appData: '1000@default,s' },
      { channel: 'PJSIP/2000-00000002', application: 'Dial', appData: 'PJSIP/1001,30' },
    ]);
    const channels = await coreShowChannels(c);
    assert.deepEqual(channels.map((ch) => [ch.channel, ch.application, ch.applicationData]), [
      ['PJSIP/1000-00000001', 'VoiceMailMain', '1000@default,s'],
      ['PJSIP/2000-00000002', 'Dial', 'PJSIP/1001,30'],
    ]);
    assert.equal(voiceMailMainBusy(channels, ALICE), true);
    assert.equal(voiceMailMainBusy(channels, BOB), false);
    f!.server.setChannels([{ channel: 'PJSIP/3000-00000003', application: 'VoiceMailMain', appData: '' }]);
    assert.equal(voiceMailMainBusy(await coreShowChannels(c), BOB), true, 'no mailbox given: the caller may pick any');
  });
});

describe('AMI helpers on the mwiext profile', () => {
  let f: Fixture | undefined;
  before(async () => {
    f = await setUp({ profile: 'mwiext' });
  });
  after(async () => tearDown(f));

  it('MWIUpdate sets the counts and Asterisk publishes them', async () => {
    const c = await f!.client();
    const seen = events(c);
    await mwiUpdate(c, ALICE, { new: 2, old: 1 });
    const mw = await seen.next('MessageWaiting');
    assert.deepEqual([mw.get('Mailbox'), mw.get('Waiting'), mw.get('New'), mw.get('Old')], ['1000@default', '1', '2', '1']);
    assert.deepEqual(await mailboxCount(c, ALICE), { urgent: 0, new: 2, old: 1 });
    const r = await c.action('MWIGet', { Mailbox: '1000@default' }, { list: true });
    assert.equal(r.events[0]?.headers.at(-1)?.[0], 'ActionID', 'MWIGet items carry ActionID last and are still collected');
  });

  it('VoicemailRefresh does not exist here', async () => {
    const c = await f!.client();
    await assert.rejects(voicemailRefresh(c, ALICE), AmiActionError);
  });
});
