/**
 * Replays the AMI transcripts captured from a real Asterisk 22 against the test server, in the
 * order they were captured, with the spool in the state each step had, and compares the bytes
 * that come back with the captured bytes.
 *
 * Only values that differ on every run are masked, on both sides, by the masks below. Nothing
 * else is normalised: header order, ActionID position, line ends and the stray LFs must match.
 *
 * Not replayed: the steps that need a real call (20-22, 60 and 70 originate calls through
 * app_voicemail; their MessageWaiting carries channel fields), Reload (80) and Command (81),
 * and the mwiext steps after an Asterisk restart (70, 71, 79). Their spool effects are set up by
 * hand where later steps depend on them, as the fixtures' README describes each step.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { countFrames, RawConnection } from '../support/ami/raw-connection.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'asterisk', 'ami');
const VM = join(FIXTURES, 'voicemail');
const EXT = join(FIXTURES, 'mwiext');
const SPOOL_FIXTURES = join(FIXTURES, 'spool');

// ---------------------------------------------------------------------------------------------
// Masks: every value here changes from run to run on a real Asterisk too.

const MASKS: ReadonlyArray<{ readonly why: string; readonly re: RegExp; readonly to: string }> = [
  { why: 'Ping reports the wall clock (seconds.microseconds)', re: /^Timestamp: [^\r\n]*/gm, to: 'Timestamp: <clock>' },
  { why: 'FullyBooted counts seconds since start and since the last reload', re: /^(Uptime|LastReload): \d+/gm, to: '$1: <seconds>' },
  { why: 'security events carry the wall clock of the event and of the login', re: /^(EventTV|SessionTV): [^\r\n]*/gm, to: '$1: <clock>' },
  { why: 'security events name the session by its memory address', re: /^SessionID: 0x[0-9a-f]+/gm, to: 'SessionID: <address>' },
  { why: 'the TCP ports of both ends are chosen per run', re: /^(LocalAddress|RemoteAddress): (IPV4\/TCP\/[0-9.]+)\/\d+/gm, to: '$1: $2/<port>' },
];

function mask(text: string): string {
  return MASKS.reduce((t, m) => t.replace(m.re, m.to), text);
}

// ---------------------------------------------------------------------------------------------
// Fixtures and the spool

async function fixture(dir: string, name: string): Promise<string> {
  return readFile(join(dir, name), 'latin1');
}

/** The captured messages of a transcript, each with its terminating empty line. */
function frames(text: string): string[] {
  return text.split('\r\n\r\n').slice(0, -1).map((f) => `${f}\r\n\r\n`);
}

const AUDIO_EXTS = ['gsm', 'wav', 'WAV'];

class Spool {
  constructor(readonly root: string) {}

  path(rel: string): string {
    return join(this.root, 'voicemail', 'default', rel);
  }

  /** A message as Asterisk leaves it: the captured .txt and one (made-up) audio file per format. */
  async put(rel: string, txtFixture: string): Promise<void> {
    const base = this.path(rel);
    await mkdir(dirname(base), { recursive: true });
    for (const ext of AUDIO_EXTS) await writeFile(`${base}.${ext}`, `audio ${ext}\n`);
    await copyFile(join(SPOOL_FIXTURES, txtFixture), `${base}.txt`);
  }

  /** A change made behind Asterisk's back: every file of the message renamed. */
  async moveByHand(from: string, to: string): Promise<void> {
    await mkdir(dirname(this.path(to)), { recursive: true });
    for (const ext of [...AUDIO_EXTS, 'txt']) await rename(`${this.path(from)}.${ext}`, `${this.path(to)}.${ext}`);
  }

  async copyByHand(from: string, to: string): Promise<void> {
    await mkdir(dirname(this.path(to)), { recursive: true });
    for (const ext of [...AUDIO_EXTS, 'txt']) await copyFile(`${this.path(from)}.${ext}`, `${this.path(to)}.${ext}`);
  }

  async deleteByHand(rel: string): Promise<void> {
    for (const ext of ['txt', ...AUDIO_EXTS]) await unlink(`${this.path(rel)}.${ext}`);
  }

  /** Every `msg*` file under voicemail/, as `<spool>/voicemail/...` paths. */
  async messageFiles(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.startsWith('msg')) out.push(`<spool>/${relative(this.root, p)}`);
      }
    };
    await walk(join(this.root, 'voicemail'));
    return out.sort();
  }
}

// ---------------------------------------------------------------------------------------------
// Replay helpers

/** Sends a step's captured request bytes and compares the reply with the captured reply. */
async function exchange(conn: RawConnection, dir: string, step: string): Promise<void> {
  const sent = await fixture(dir, `${step}.sent.txt`);
  const expected = await fixture(dir, `${step}.recv.txt`);
  conn.send(sent);
  const got = await conn.readFrames(countFrames(expected));
  assert.equal(mask(got), mask(expected), `${step}: reply differs`);
}

/** Compares what the listener received during a step with the captured events (often none). */
async function expectEvents(listener: RawConnection, dir: string, file: string): Promise<void> {
  const expected = await fixture(dir, file);
  const got = expected === '' ? await listener.quiet(250) : await listener.readFrames(countFrames(expected));
  assert.equal(mask(got), mask(expected), `${file}: events differ`);
}

async function openAfterBanner(server: AmiTestServer): Promise<RawConnection> {
  const conn = await RawConnection.open(server.port);
  assert.equal(await conn.readBytes(30), 'Asterisk Call Manager/11.0.0\r\n');
  return conn;
}

// ---------------------------------------------------------------------------------------------

describe('AMI test server replays the voicemail (app_voicemail) transcripts', () => {
  let dir: string;
  let spool: Spool;
  let server: AmiTestServer;
  let req: RawConnection;
  let listener: RawConnection;
  const refs = { '1000': { context: 'default', mailbox: '1000' }, '1001': { context: 'default', mailbox: '1001' }, '1002': { context: 'default', mailbox: '1002' } };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-ami-fidelity-'));
    spool = new Spool(dir);
    for (const box of ['1000', '1001', '1002']) await mkdir(spool.path(box), { recursive: true });
    server = await startAmiServer({
      spoolDir: dir,
      profile: 'voicemail',
      // The captured voicemail.conf (fixtures config/voicemail.conf).
      voicemailBoxes: [
        { context: 'default', mailbox: '1000', fullName: 'Alice Example', email: 'alice@example.invalid', attach: true },
        { context: 'default', mailbox: '1001', fullName: 'Bob Example', email: 'bob@example.invalid', attach: false },
        { context: 'default', mailbox: '1002', fullName: 'Carol Example', email: 'carol@example.invalid' },
      ],
    });
  });

  after(async () => {
    req?.close();
    listener?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('01-banner: the 30-byte banner', async () => {
    // fixtures ami/voicemail/01-banner.recv.txt came out empty in the capture; the same banner is the
    // first line of this profile's listener session and of the mwiext capture.
    const banner = (await fixture(VM, '99-listener-full-session.recv.txt')).slice(0, 30);
    assert.equal(banner, await fixture(EXT, '01-banner.recv.txt'));
    const conn = await RawConnection.open(server.port);
    assert.equal(await conn.readBytes(30), banner);
    assert.equal(await conn.quiet(100), '', 'nothing follows the banner');
    conn.close();
  });

  it('02-login-events-on and 02b-logoff', async () => {
    const conn = await openAfterBanner(server);
    await exchange(conn, VM, '02-login-events-on');
    await exchange(conn, VM, '02b-logoff');
    await conn.waitClosed();
  });

  it('03-login-bad-secret: the error after a 1 s delay, then the connection closes', async () => {
    const conn = await openAfterBanner(server);
    const started = Date.now();
    await exchange(conn, VM, '03-login-bad-secret');
    assert.ok(Date.now() - started >= 950, 'Asterisk sleeps 1 s before refusing');
    await conn.waitClosed();
  });

  it('04-login-events-off, then the listener logs in with events on', async () => {
    req = await openAfterBanner(server);
    await exchange(req, VM, '04-login-events-off');
    listener = await openAfterBanner(server);
    listener.send(await fixture(VM, '99-listener-full-session.sent.txt'));
    const expected = frames((await fixture(VM, '99-listener-full-session.recv.txt')).slice(30)).slice(0, 3).join('');
    assert.equal(mask(await listener.readFrames(3)), mask(expected));
  });

  it('05-ping', async () => {
    await exchange(req, VM, '05-ping');
  });

  it('10..15: counts, status and users of empty mailboxes', async () => {
    for (const step of ['10-mailboxcount-empty', '11-mailboxstatus-empty', '12-mailboxcount-unknown-mailbox', '13-mailboxcount-no-context', '14-voicemailuserslist', '15-voicemailuserstatus']) {
      await exchange(req, VM, step);
    }
    assert.equal(await listener.quiet(100), '');
  });

  it('16, 17: MWIGet and MWIUpdate are unknown; the listener sees RequestBadFormat', async () => {
    await exchange(req, VM, '16-mwiget-not-available');
    await exchange(req, VM, '17-mwiupdate-not-available');
    const captured = frames(await fixture(VM, '99-listener-full-session.recv.txt')).filter((f) => f.startsWith('Event: RequestBadFormat'));
    assert.equal(captured.length, 2);
    assert.equal(mask(await listener.readFrames(2)), mask(captured.join('')));
  });

  it('18: VoicemailRefresh with nothing changed: the ack and no event', async () => {
    await exchange(req, VM, '18-voicemailrefresh-all-no-changes');
    await expectEvents(listener, VM, '18-voicemailrefresh-all-no-changes.events.recv.txt');
  });

  it('(20-22: three voicemails are left; app_voicemail publishes after each)', async () => {
    await spool.put('1001/INBOX/msg0000', 'spool-after-leaving/voicemail/default/1001/INBOX/msg0000.txt');
    await server.emitMessageWaiting(refs['1001'], { force: true });
    await spool.put('1000/INBOX/msg0000', 'spool-after-leaving/voicemail/default/1000/INBOX/msg0000.txt');
    await server.emitMessageWaiting(refs['1000'], { force: true });
    await spool.put('1000/INBOX/msg0001', 'spool-after-leaving/voicemail/default/1000/INBOX/msg0001.txt');
    await server.emitMessageWaiting(refs['1000'], { force: true });
    const events = await listener.quiet(150);
    // The captured ones also carry the caller's channel fields; these have none (no call here).
    assert.equal(countFrames(events), 5, 'MessageWaiting per message, DeviceStateChange when 1000 and 1001 light up');
  });

  it('30..35: counts, status, users list and box summary after the messages', async () => {
    for (const step of [
      '30-mailboxcount-1000',
      '31-mailboxstatus-1000',
      '32-mailboxcount-1001',
      '33-mailboxcount-multi',
      '33b-mailboxcount-multi-comma',
      '33c-mailboxcount-bare-1000',
      '34-voicemailuserslist-after',
      '35-voicemailboxsummary-1000',
    ]) {
      await exchange(req, VM, step);
    }
  });

  it('40..43: a move behind Asterisk\'s back is published only by VoicemailRefresh, once', async () => {
    await spool.moveByHand('1001/INBOX/msg0000', '1001/Old/msg0000');
    await expectEvents(listener, VM, '40-1001-moved-to-Old-behind-back.events-before-refresh.recv.txt');
    await exchange(req, VM, '41-voicemailrefresh-1001');
    await expectEvents(listener, VM, '41-voicemailrefresh-1001.events.recv.txt');
    await exchange(req, VM, '42-mailboxcount-1001-after-move');
    await exchange(req, VM, '43-voicemailrefresh-1001-again-nochange');
    await expectEvents(listener, VM, '43-voicemailrefresh-1001-again-nochange.events.recv.txt');
  });

  it('44: the poller publishes a polled mailbox changed behind Asterisk\'s back', async () => {
    await spool.moveByHand('1000/INBOX/msg0000', '1000/Old/msg0000');
    assert.equal(await server.emitMessageWaiting(refs['1000']), true);
    await expectEvents(listener, VM, '44-1000-moved-to-Old-behind-back.poll-events.recv.txt');
    assert.deepEqual(await spool.messageFiles(), await listing('spool-tree-after-behind-back-moves.txt'));
  });

  it('45..48: a message injected into 1002, counted at once, published by refresh', async () => {
    await spool.copyByHand('1000/INBOX/msg0001', '1002/INBOX/msg0000');
    await expectEvents(listener, VM, '45-1002-injected-behind-back.events-before-refresh.recv.txt');
    await exchange(req, VM, '46-mailboxcount-1002-injected');
    await exchange(req, VM, '47-voicemailrefresh-1002-after-inject');
    await expectEvents(listener, VM, '47-voicemailrefresh-1002-after-inject.events.recv.txt');
    await exchange(req, VM, '48-voicemailrefresh-context-only');
    await expectEvents(listener, VM, '48-voicemailrefresh-context-only.events.recv.txt');
  });

  it('50: VoicemailMove by ID (stray LF), one MessageWaiting, and the spool as Asterisk left it', async () => {
    await exchange(req, VM, '50-voicemailmove-1000-INBOX-to-Old');
    await expectEvents(listener, VM, '50-voicemailmove-1000-INBOX-to-Old.events.recv.txt');
    // Resequenced INBOX first, then copied to Old's next number: the captured tree.
    assert.deepEqual(await spool.messageFiles(), await listing('spool-tree-after-voicemailmove.txt'));
    const leftLock = (await readdir(spool.path('1000/INBOX'))).filter((n) => n.startsWith('.lock'));
    assert.deepEqual(leftLock, [], 'no lock file left behind');
  });

  it('51, 52, 53: VoicemailRemove, a move with an unknown ID (Success, "failed"), the summary after', async () => {
    await exchange(req, VM, '51-voicemailremove-1002-INBOX');
    await expectEvents(listener, VM, '51-voicemailremove-1002-INBOX.events.recv.txt');
    await exchange(req, VM, '52-voicemailmove-bad-id');
    assert.equal(await listener.quiet(150), '', 'a failed move publishes nothing');
    await exchange(req, VM, '53-voicemailboxsummary-1000-after');
  });

  it('54: a deletion behind Asterisk\'s back, found by the poller', async () => {
    await spool.deleteByHand('1000/Old/msg0001');
    await server.emitMessageWaiting(refs['1000']);
    await expectEvents(listener, VM, '54-1000-deleted-behind-back.poll-events.recv.txt');
  });

  it('60..64: an urgent message: counted apart, listed, republished by every poll, removed', async () => {
    await spool.put('1000/Urgent/msg0000', 'spool-with-urgent/voicemail/default/1000/Urgent/msg0000.txt');
    await server.emitMessageWaiting(refs['1000'], { force: true });
    await listener.quiet(150);
    assert.equal(
      await readFile(spool.path('1000/Old/msg0000.txt'), 'latin1'),
      await readFile(join(SPOOL_FIXTURES, 'spool-with-urgent/voicemail/default/1000/Old/msg0000.txt'), 'latin1'),
    );
    await exchange(req, VM, '61-mailboxcount-1000-with-urgent');
    await exchange(req, VM, '62-voicemailboxsummary-1000-with-urgent');
    for (let i = 0; i < 3; i++) assert.equal(await server.emitMessageWaiting(refs['1000']), true, 'the urgent poll bug republishes');
    await expectEvents(listener, VM, '63-urgent-poll-repeats.events.recv.txt');
    await exchange(req, VM, '64-voicemailremove-1000-Urgent');
    await expectEvents(listener, VM, '64-voicemailremove-1000-Urgent.events.recv.txt');
    assert.equal(await server.emitMessageWaiting(refs['1000']), false, 'no more repeats once the urgent message is gone');
  });

  it('71: MailboxCount of 1002, and the spool ends as captured', async () => {
    await exchange(req, VM, '71-mailboxcount-1002-after-locked');
    const txts = (await spool.messageFiles()).filter((p) => p.endsWith('.txt'));
    assert.deepEqual(txts, ['<spool>/voicemail/default/1000/Old/msg0000.txt', '<spool>/voicemail/default/1001/Old/msg0000.txt']);
    for (const p of txts) {
      const rel = p.replace('<spool>/', '');
      assert.equal(await readFile(join(dir, rel), 'latin1'), await readFile(join(SPOOL_FIXTURES, 'spool-final', rel), 'latin1'));
    }
  });

  it('records every action it received, in order', () => {
    const actions = server.received.map((r) => r.action);
    assert.deepEqual(actions.slice(0, 4), ['Login', 'Logoff', 'Login', 'Login']);
    assert.equal(server.received.find((r) => r.get('ActionID') === 'mv-1')?.get('ToFolder'), 'Old');
  });
});

/** The message files of a captured spool listing (`<size> <path>` lines). */
async function listing(name: string): Promise<string[]> {
  const text = await readFile(join(SPOOL_FIXTURES, 'listings', name), 'utf8');
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[1] ?? '')
    .filter((p) => /\/msg\d{4}\./.test(p)) // the greeting unavail.wav is not a message
    .sort();
}

// ---------------------------------------------------------------------------------------------

describe('AMI test server replays the mwiext (res_mwi_external_ami) transcripts', () => {
  let dir: string;
  let server: AmiTestServer;
  let req: RawConnection;
  let listener: RawConnection;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-ami-fidelity-ext-'));
    server = await startAmiServer({ spoolDir: dir, profile: 'mwiext' });
  });

  after(async () => {
    req?.close();
    listener?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('01-banner, then the request connection (events off) and the listener log in', async () => {
    req = await RawConnection.open(server.port);
    assert.equal(await req.readBytes(30), await fixture(EXT, '01-banner.recv.txt'));
    // This profile's request-connection login was not captured; it is the same as voicemail's 04.
    await exchange(req, VM, '04-login-events-off');
    listener = await RawConnection.open(server.port);
    listener.send(await fixture(EXT, '99-listener-full-session.sent.txt'));
    await listener.readFrames(3);
  });

  it('10, 11: nothing stored yet', async () => {
    await exchange(req, EXT, '10-mwiget-empty');
    await exchange(req, EXT, '11-mailboxcount-empty');
  });

  it('20..26: MWIUpdate (no Message line), MessageWaiting every time, DeviceStateChange on change', async () => {
    for (const step of [
      '20-mwiupdate-1000-new2-old1',
      '21-mwiupdate-1000-same-again',
      '22-mwiupdate-1000-new0-old3',
      '23-mwiupdate-1001-new1',
      '24-mwiupdate-no-counts',
      '25-mwiupdate-no-mailbox',
      '26-mwiupdate-bare-mailbox-no-context',
    ]) {
      await exchange(req, EXT, step);
      await expectEvents(listener, EXT, `${step}.events.recv.txt`);
    }
  });

  it('30..37: MWIGet (ActionID last), MailboxCount/Status, app_voicemail actions unknown', async () => {
    for (const step of [
      '30-mwiget-1000',
      '31-mwiget-regex-all',
      '32-mwiget-regex-10xx',
      '33-mailboxcount-1000',
      '34-mailboxstatus-1000',
      '35-mailboxstatus-1001',
      '36-voicemailrefresh-not-available',
      '37-voicemailuserslist-not-available',
    ]) {
      await exchange(req, EXT, step);
    }
    await listener.readFrames(2); // RequestBadFormat for 36 and 37, checked with the whole session below
  });

  it('40..42: MWIDelete publishes 0/0 for a mailbox with counts, nothing for an unknown one', async () => {
    await exchange(req, EXT, '40-mwidelete-1001');
    await expectEvents(listener, EXT, '40-mwidelete-1001.events.recv.txt');
    await exchange(req, EXT, '41-mwidelete-nonexistent');
    await expectEvents(listener, EXT, '41-mwidelete-nonexistent.events.recv.txt');
    await exchange(req, EXT, '42-mwiget-all-after-delete');
  });

  it('99: the listener\'s whole session equals the captured one', async () => {
    assert.equal(mask(listener.all), mask(await fixture(EXT, '99-listener-full-session.recv.txt')));
  });

  it('50: Events: call plus a Filter lets only MessageWaiting through', async () => {
    const [loginBytes, filterBytes] = frames(await fixture(EXT, '50-login-events-call-plus-filter-then-mwiupdate.sent.txt'));
    const conn = await openAfterBanner(server);
    conn.send(loginBytes ?? '');
    await conn.readFrames(1);
    conn.send(filterBytes ?? '');
    await conn.readFrames(1);
    req.send('Action: MWIUpdate\r\nActionID: u-8\r\nMailbox: 1001@default\r\nNewMessages: 5\r\nOldMessages: 2\r\n\r\n');
    await req.readFrames(1);
    await conn.readFrames(1);
    const expected = await fixture(EXT, '50-login-events-call-plus-filter-then-mwiupdate.recv.txt');
    assert.equal(mask(conn.all.slice(30)), mask(expected));
    conn.close();
  });
});
