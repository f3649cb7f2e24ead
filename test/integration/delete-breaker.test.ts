/**
 * The installation-wide deletion breaker on real Dovecot, Redis and an SMTP sink: more deletions
 * than sync.deleteBreaker.max in the window (here 2) opens it; every deletion is then held, on
 * both sides and in every mailbox, nothing else is; the admins get one alert mail; and
 * `vmbridge sync --release-deletes` lets the held deletions through once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { MailClient } from '../support/mail-client.js';
import { freePort } from '../support/ports.js';
import { parseExposition } from '../support/prom-text.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const a: MailboxRef = { context: 'default', mailbox: '3600' };
const b: MailboxRef = { context: 'default', mailbox: '3601' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the deletion breaker', { timeout: 180_000 }, () => {
  let h: Harness;
  let sink: SmtpSink;
  let service: Service;
  let configPath: string;
  let httpPort: number;
  const scrape = async () => parseExposition(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());

  const inSpool = async (ref: MailboxRef): Promise<string[]> => [...(await listFolder(h.spoolDir, ref, 'INBOX')), ...(await listFolder(h.spoolDir, ref, 'Old'))].map((m) => m.msgId);
  const expungeAll = async (mc: MailClient): Promise<void> => {
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageDelete('1:*', { uid: false });
    } finally {
      lock.release();
    }
  };

  before(async () => {
    sink = await startSmtpSink();
    httpPort = await freePort();
    h = await startHarness({
      boxes: [{ mailbox: a.mailbox }, { mailbox: b.mailbox }],
      settings: (base) => ({
        ...base,
        sync: { ...(base.sync as object), deleteBreaker: { max: 2, windowSeconds: 600 } },
        http: { host: '127.0.0.1', port: httpPort },
        alerts: { to: ['admin@example.invalid'], from: 'vmbridge@example.invalid', smtp: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: false } },
      }),
    });
    configPath = join(h.dir, 'breaker.yaml');
    await writeFile(configPath, stringify(h.settings));
    service = await h.startService();
  });
  after(async () => {
    await service?.close();
    await h?.stop();
    await sink?.close();
  });

  it('three emails deleted at once (limit 2): the voicemails are kept, one alert mail; released, they go', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await leaveVoicemail(h.spoolDir, a, { callerid: `"Caller ${i}" <555000${i}>`, duration: 2 })).msgId);
    const mc = await h.mail(a);
    await waitFor('three emails', async () => ((await mc.list(['INBOX'])).length === 3 ? true : undefined), WAIT);
    await sleep(1_000);
    await expungeAll(mc);

    const alert = await waitFor('the alert mail', () => sink.received.find((m) => (m.mail.subject ?? '').includes('Deletions stopped')), WAIT);
    assert.match(alert.mail.subject ?? '', /3 planned within 10 min \(limit 2\)/);
    assert.match(alert.mail.text ?? '', /vmbridge sync --release-deletes/);
    const tripped = await scrape();
    assert.equal(tripped.value('vmbridge_deletion_guard_trips_total', { guard: 'delete-breaker' }), 1);
    assert.equal(tripped.value('vmbridge_deletion_guard_trips_total', { guard: 'safety-stop' }), 0);
    assert.equal(tripped.value('vmbridge_delete_breaker_open'), 1);
    await sleep(1_500);
    assert.deepEqual((await inSpool(a)).sort(), [...ids].sort(), 'every voicemail kept while the breaker is open');

    // Open for everyone: a deletion in another mailbox is held too; a new voicemail still goes through.
    const other = await leaveVoicemail(h.spoolDir, b, { callerid: '"Other" <5550009>', duration: 2 });
    const mcb = await h.mail(b);
    await waitFor('the other mailbox still gets its email', async () => (await mcb.list(['INBOX'])).some((e) => e.messageId === identityMessageId(b, other.msgId, DOMAIN)) || undefined, WAIT);
    await sleep(1_000);
    await expungeAll(mcb);
    await sleep(2_000);
    assert.deepEqual(await inSpool(b), [other.msgId], 'held in the other mailbox too');
    assert.equal(sink.received.filter((m) => (m.mail.subject ?? '').includes('Deletions stopped')).length, 1, 'one alert mail');

    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'sync', '--config', configPath, '--release-deletes'], { cwd: ROOT }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /deletion breaker released \(open since .*, 3 deletions counted\)/);
    await service.requester.request(a, 'test', { force: true });
    await waitFor('the held deletions made', async () => ((await inSpool(a)).length === 0 ? true : undefined), WAIT);
    assert.equal((await scrape()).value('vmbridge_delete_breaker_open'), 0);
  });
});
