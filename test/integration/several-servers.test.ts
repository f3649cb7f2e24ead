/**
 * Two voicemail servers in one installation, on real Dovecot and Redis: the main one (the
 * top-level spool, changed by files under Asterisk's folder lock) and `pbx-b` (a spool of its own,
 * its own voicemail.conf, and its own Asterisk over AMI, through which its changes go). Both have
 * a mailbox 1000@default, and both are kept in the same IMAP account: they are still two
 * mailboxes, each with its own emails, Redis records and lamp, and a mail-client action on one's
 * email reaches that server's spool only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 40_000, intervalMs: 100 };
const onMain: MailboxRef = { context: 'default', mailbox: '1000' };
const onB: MailboxRef = { server: 'pbx-b', context: 'default', mailbox: '1000' };
const ami = (name: string, port: number, servers: string[]) => ({ name, kind: 'ami-refresh', host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', timeoutSeconds: 5, servers });

describe('two voicemail servers with the same mailbox number', { timeout: 180_000 }, () => {
  let h: Harness;
  let spoolB: string;
  let ownerA: AmiTestServer;
  let ownerB: AmiTestServer;
  let service: Service;
  let redis: Redis;
  let mc: MailClient;
  let prefix: string;

  const folderIds = async (spoolDir: string, ref: MailboxRef, folder: SpoolFolder): Promise<string[]> => (await listFolder(spoolDir, ref, folder)).map((m) => m.msgId);

  before(async () => {
    h = await startHarness({
      boxes: [{ mailbox: '1000', fullName: 'Ann Main' }],
      settings: (base) => base,
    });
    spoolB = join(h.dir, 'spool-b');
    await mkdir(join(spoolB, 'voicemail'), { recursive: true });
    const confB = join(h.dir, 'voicemail-b.conf');
    // The same number and context, kept in the same IMAP account as the main server's 1000.
    const { user, pass } = h.account(onMain);
    await writeFile(confB, ['[general]', 'format=wav49|gsm|wav', '', '[default]', `1000 => 1234,Bea Second,b@example.invalid,,imapuser=${user}|imappassword=${pass}|tz=utc`, ''].join('\n'));
    ownerA = await startAmiServer({ spoolDir: h.spoolDir, profile: 'voicemail' });
    ownerB = await startAmiServer({ spoolDir: spoolB, profile: 'voicemail' });
    const settings = {
      ...h.settings,
      servers: [{
        name: 'pbx-b',
        spool: { dir: spoolB, voicemailConf: confB, watch: true },
        asterisk: { ami: { host: '127.0.0.1', port: ownerB.port, username: 'bridge', secret: 'bridge', useVoicemailActions: true, secure: false, tls: { rejectUnauthorized: true } } },
      }],
      mwi: { ...h.settings.mwi, targets: [ami('owner-a', ownerA.port, ['main']), ami('owner-b', ownerB.port, ['pbx-b'])] },
    };
    prefix = h.settings.redis.prefix;
    redis = new Redis(h.redisUrl);
    const { startService } = await import('../../src/service.js');
    const { settingsSchema } = await import('../../src/config/schema.js');
    service = await startService(settingsSchema.parse(settings), h.log);
    mc = await h.mail(onMain);
  });

  after(async () => {
    await service?.close();
    redis?.disconnect();
    await ownerA?.close();
    await ownerB?.close();
    await h?.stop();
  });

  it('makes one email for each server’s voicemail, with its own identity, records and lamp', async () => {
    const a = await leaveVoicemail(h.spoolDir, onMain, { callerid: '"Caller A" <5551>' });
    const b = await leaveVoicemail(spoolB, onB, { callerid: '"Caller B" <5552>' });
    const emails = await waitFor('both emails', async () => {
      const list = await mc.list(VOICEMAIL_FOLDERS);
      return list.length >= 2 ? list : undefined;
    }, WAIT);
    assert.deepEqual(emails.map((e) => e.messageId).sort(), [identityMessageId(onMain, a.msgId, DOMAIN), identityMessageId(onB, b.msgId, DOMAIN)].sort());
    assert.ok(identityMessageId(onB, b.msgId, DOMAIN).includes('.pbx-b@'));

    // Each mailbox has its own records, under its own key.
    await waitFor('records of both mailboxes', async () => ((await redis.hlen(`${prefix}:state:default:1000`)) === 1 && (await redis.hlen(`${prefix}:state:pbx-b:default:1000`)) === 1 ? true : undefined), WAIT);
    assert.deepEqual(Object.keys(await redis.hgetall(`${prefix}:state:default:1000`)), [a.msgId]);
    assert.deepEqual(Object.keys(await redis.hgetall(`${prefix}:state:pbx-b:default:1000`)), [b.msgId]);

    // Each lamp goes to its own Asterisk only.
    await waitFor('both lamps published', async () => ((await redis.hget(`${prefix}:mwi:published:owner-a`, 'default:1000')) && (await redis.hget(`${prefix}:mwi:published:owner-b`, 'pbx-b:default:1000')) ? true : undefined), WAIT);
    assert.deepEqual(await redis.hkeys(`${prefix}:mwi:published:owner-a`), ['default:1000']);
    assert.deepEqual(await redis.hkeys(`${prefix}:mwi:published:owner-b`), ['pbx-b:default:1000']);
    assert.equal(ownerA.received.filter((x) => x.action.toLowerCase() === 'voicemailrefresh').length >= 1, true);
    assert.equal(ownerB.received.filter((x) => x.action.toLowerCase() === 'voicemailrefresh').length >= 1, true);

    // Logs name the second server's mailbox with its server.
    assert.ok(h.logLines.some((l) => l.includes('"pbx-b/1000@default"')), 'a log line names pbx-b/1000@default');
  });

  it('takes a read on the second server’s email to that server’s spool (through its Asterisk) only', async () => {
    const [bId] = await folderIds(spoolB, onB, 'INBOX');
    const [aId] = await folderIds(h.spoolDir, onMain, 'INBOX');
    assert.ok(bId && aId);
    const bEmail = (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(onB, bId, DOMAIN));
    assert.ok(bEmail);
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsAdd(String(bEmail.uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await waitFor('the read voicemail in pbx-b Old', async () => ((await folderIds(spoolB, onB, 'Old')).includes(bId) ? true : undefined), WAIT);
    assert.ok(ownerB.received.some((x) => x.action.toLowerCase() === 'voicemailmove'), 'moved through pbx-b’s Asterisk');
    assert.equal(ownerA.received.some((x) => x.action.toLowerCase() === 'voicemailmove'), false, 'the main Asterisk was asked to move nothing');
    assert.deepEqual(await folderIds(h.spoolDir, onMain, 'INBOX'), [aId], 'the main server’s 1000 is untouched');
    assert.deepEqual(await folderIds(h.spoolDir, onMain, 'Old'), []);
  });

  it('takes a delete of the main server’s email to the main spool only', async () => {
    const [aId] = await folderIds(h.spoolDir, onMain, 'INBOX');
    assert.ok(aId);
    const aEmail = (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(onMain, aId, DOMAIN));
    assert.ok(aEmail);
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageDelete(String(aEmail.uid), { uid: true });
    } finally {
      lock.release();
    }
    await waitFor('the voicemail gone from the main spool', async () => ((await folderIds(h.spoolDir, onMain, 'INBOX')).length === 0 ? true : undefined), WAIT);
    const [bId] = await folderIds(spoolB, onB, 'Old');
    assert.ok(bId, 'pbx-b’s voicemail is still in its Old');
    await waitFor('pbx-b’s lamp shows one old', async () => {
      const raw = await redis.hget(`${prefix}:mwi:published:owner-b`, 'pbx-b:default:1000');
      return raw && JSON.parse(raw).old === 1 && JSON.parse(raw).new === 0 ? true : undefined;
    }, WAIT);
    await waitFor('the main lamp shows nothing', async () => {
      const raw = await redis.hget(`${prefix}:mwi:published:owner-a`, 'default:1000');
      return raw && JSON.parse(raw).old === 0 && JSON.parse(raw).new === 0 ? true : undefined;
    }, WAIT);
    const remaining = (await mc.list(VOICEMAIL_FOLDERS)).map((e) => e.messageId);
    assert.deepEqual(remaining, [identityMessageId(onB, bId, DOMAIN)], 'the second server’s email stays');
  });
});
