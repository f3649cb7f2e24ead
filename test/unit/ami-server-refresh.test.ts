/**
 * The AMI test server's VoicemailRefresh, answered by name: with Context and Mailbox it polls only
 * the mailboxes whose number Mailbox starts with (manager_match_mailbox compares with strncmp over
 * the cached mailbox's length), found without listing every mailbox, and seeds one configured
 * after start as Asterisk would have published it at load (nothing). Without Mailbox it walks all.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { RawConnection } from '../support/ami/raw-connection.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';

const BOXES = ['1', '10', '100', '1000', '2000'];

/** The mailboxes of the MessageWaiting events in `text`, in their order. */
function waitingFor(text: string): string[] {
  return text.split('\r\n\r\n').filter((f) => f.startsWith('Event: MessageWaiting')).map((f) => /^Mailbox: (.*)$/m.exec(f)?.[1] ?? '?');
}

describe('AMI test server: VoicemailRefresh by name', () => {
  let dir: string;
  let server: AmiTestServer;
  let conn: RawConnection;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-ami-refresh-'));
    for (const m of BOXES) await mkdir(join(dir, 'voicemail', 'default', m), { recursive: true });
    server = await startAmiServer({ spoolDir: dir, profile: 'voicemail' });
    conn = await RawConnection.open(server.port);
    conn.send('Action: Login\r\nUsername: bridge\r\nSecret: bridge\r\nEvents: on\r\n\r\n');
    await conn.quiet(300);
    // Each mailbox gets a new message behind Asterisk's back: a refresh that polls it publishes.
    for (const m of BOXES) await leaveVoicemail(dir, { context: 'default', mailbox: m }, { callerid: '"Caller" <1>', duration: 1 });
    await mkdir(join(dir, 'voicemail', 'default', '10001'), { recursive: true });
    await leaveVoicemail(dir, { context: 'default', mailbox: '10001' }, { callerid: '"Caller" <1>', duration: 1 });
  });

  after(async () => {
    conn?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('Context and Mailbox: the mailboxes Mailbox starts with, in order, and no other', async () => {
    conn.send('Action: VoicemailRefresh\r\nActionID: r1\r\nContext: default\r\nMailbox: 1000\r\n\r\n');
    const got = await conn.quiet(400);
    assert.match(got, /Response: Success\r\nActionID: r1\r\nMessage: Refresh sent/);
    assert.deepEqual(waitingFor(got), ['1000@default', '100@default', '10@default', '1@default']);
  });

  it('a mailbox made after start is polled by name, and a name that is no directory entry polls nothing', async () => {
    conn.send('Action: VoicemailRefresh\r\nActionID: r2\r\nContext: default\r\nMailbox: 10001\r\n\r\n');
    assert.deepEqual(waitingFor(await conn.quiet(400)), ['10001@default'], 'the others were published by the first refresh');
    conn.send('Action: VoicemailRefresh\r\nActionID: r3\r\nContext: default\r\nMailbox: ../default/2000\r\n\r\n');
    assert.deepEqual(waitingFor(await conn.quiet(400)), []);
  });

  it('Context alone walks every mailbox of it', async () => {
    conn.send('Action: VoicemailRefresh\r\nActionID: r4\r\nContext: default\r\n\r\n');
    assert.deepEqual(waitingFor(await conn.quiet(400)), ['2000@default']);
  });
});
