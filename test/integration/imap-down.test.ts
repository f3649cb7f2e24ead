/**
 * The lamps follow the spool whether or not IMAP can be reached. vmbridge reaches the private
 * Dovecot through a relay (test/support/imap-tap.ts) that can cut every connection and turn new
 * ones away, as a server that is down. Meanwhile a new voicemail and a phone-side change still
 * reach the owning Asterisk's lamp with the spool's counts (never 0 or a flash), the mailbox is
 * marked stale (Redis, for every process and doctor; /metrics), and once the server is back the
 * email side catches up and the mark is cleared. Real Dovecot, Redis and the AMI test server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { listStale } from '../../src/queue/stale-marks.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { startOwnerLamp, type OwnerLamp } from '../support/owner-lamp.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 30_000, intervalMs: 50 };
const ref: MailboxRef = { context: 'default', mailbox: '3400' };
const MAILBOX = `${ref.mailbox}@${ref.context}`;

describe('IMAP down: the lamps follow the spool, the email side catches up', { timeout: 180_000 }, () => {
  let spoolDir: string;
  let tap: ImapTap;
  let dovecotPort: number;
  let h: Harness;
  let ownerLamp: OwnerLamp;
  let service: Service;
  let redis: Redis;
  const shown = (): Array<{ new: number; old: number }> => ownerLamp.shown(MAILBOX);

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-imap-down-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    ownerLamp = await startOwnerLamp(spoolDir);
    tap = await startImapTap();
    h = await startHarness({
      boxes: [{ mailbox: ref.mailbox }],
      settings: (base) => {
        const imap = base.imap as { port: number };
        dovecotPort = imap.port;
        tap.upstreamPort = imap.port;
        return {
          ...base,
          spool: { ...(base.spool as object), dir: spoolDir },
          imap: { ...imap, port: tap.port, idle: { maxAccounts: 0 } },
          mwi: { targets: [ownerLamp.target], retrySeconds: 1, retryMaxSeconds: 2 },
        };
      },
    });
    redis = new Redis(h.redisUrl);
    service = await startService(h.settings, h.log);
  });
  after(async () => {
    await service?.close();
    redis?.disconnect();
    await ownerLamp?.close();
    await h?.stop();
    await tap?.close();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  it('new voicemail and a phone-side change are shown while IMAP is down; the emails follow when it is back', async () => {
    const first = await leaveVoicemail(spoolDir, ref, { callerid: '"Before" <5550001>', duration: 2 });
    const mc = await h.mail(ref);
    await waitFor('the first email', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, first.msgId, DOMAIN)) || undefined, WAIT);
    await waitFor('the lamp at 1 new', () => shown().some((s) => s.new === 1 && s.old === 0) || undefined, WAIT);

    // The server goes away.
    tap.upstreamPort = undefined;
    tap.dropAll();
    const mark = ownerLamp.events.length;
    const second = await leaveVoicemail(spoolDir, ref, { callerid: '"During" <5550002>', duration: 2 });
    await waitFor('the lamp at 2 new with IMAP down', () => shown().some((s) => s.new === 2) || undefined, WAIT);
    // Heard on the phone while IMAP is still down: Old, and the lamp says so.
    const num = (await listFolder(spoolDir, ref, 'INBOX')).find((m) => m.msgId === first.msgId)!.msgnum;
    await moveMessage(spoolDir, ref, 'INBOX', num, 'Old');
    await waitFor('the lamp at 1 new, 1 old with IMAP down', () => shown().some((s) => s.new === 1 && s.old === 1) || undefined, WAIT);
    const during = ownerLamp.events.slice(mark).filter((e) => e.event.get('Mailbox') === MAILBOX).map((e) => Number(e.event.get('New')));
    assert.ok(during.every((n) => n >= 1), `never 0 while there is new voicemail: ${during.join(',')}`);
    const stale = await waitFor('the mailbox marked stale', async () => (await listStale(redis, h.settings.redis.prefix)).find((s) => s.mailbox === MAILBOX), WAIT);
    assert.ok(stale.reason.length > 0, 'with the reason');
    assert.equal((await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, second.msgId, DOMAIN)), false, 'no email while IMAP is down');

    // Back: the email of the second voicemail is appended, the first is marked read, the mark is cleared.
    tap.upstreamPort = dovecotPort;
    await waitFor('the second email after IMAP is back', async () => (await mc.list(['INBOX'])).some((e) => e.messageId === identityMessageId(ref, second.msgId, DOMAIN)) || undefined, { timeoutMs: 60_000, intervalMs: 200 });
    await waitFor('the first email marked read', async () => (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(ref, first.msgId, DOMAIN))?.flags.has('\\Seen') || undefined, WAIT);
    await waitFor('the stale mark cleared', async () => ((await listStale(redis, h.settings.redis.prefix)).some((s) => s.mailbox === MAILBOX) ? undefined : true), WAIT);
  });
});
