/**
 * The alert queue and worker against a real Redis and a real SMTP server: an SMTP failure is
 * retried with backoff and does not use up the hourly limit; alerts over the limit are held and
 * arrive as one summary mail; the Redis state behaves as the quota watch relies on it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import type { ParsedMail } from 'mailparser';
import { AlertState } from '../../src/alerts/state.js';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { AlertProducer, type QuotaAlert } from '../../src/queue/alert-queue.js';
import { createAlertWorker, type AlertWorker } from '../../workers/alert.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { waitFor } from '../support/wait.js';

describe('alert mails: retries, flood cap and summary on real Redis and SMTP', { timeout: 120_000 }, () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let sink: SmtpSink;
  let settings: Settings;
  let producer: AlertProducer;
  let worker: AlertWorker;
  let state: AlertState;
  const received = (): ParsedMail[] => sink.received.map((r) => r.mail);
  let refuseNext = 1;
  const logLines: string[] = [];

  before(async () => {
    redisServer = await startRedis();
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    // The first message gets a temporary failure, as a mail server in maintenance gives.
    sink = await startSmtpSink({
      refuse: () => (refuseNext-- > 0 ? Object.assign(new Error('try again later'), { responseCode: 451 }) : undefined),
    });
    const port = sink.port;
    settings = settingsSchema.parse({
      imap: { host: '127.0.0.1' },
      redis: { url: redisServer.url, prefix: `af${process.pid}` },
      alerts: { to: ['admin@example.invalid'], from: 'vmbridge@example.invalid', smtp: { host: '127.0.0.1', port, secure: false, requireTLS: false }, maxMailsPerHour: 2 },
    });
    const log = createLogger('info', { destination: new Writable({ write(chunk: Buffer, _e, cb) { logLines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } }) });
    state = new AlertState(redis, settings.redis.prefix);
    producer = new AlertProducer(redis, settings.redis.prefix);
    worker = createAlertWorker({ settings, state, producer, log });
  });

  after(async () => {
    await worker?.close();
    await producer?.close();
    redis?.disconnect();
    await sink?.close();
    await redisServer?.stop();
  });

  const alert = (mailbox: string): QuotaAlert => ({
    kind: 'quota',
    imapUser: `u${mailbox}`,
    boxes: [{ context: 'default', mailbox, ownerName: `Owner ${mailbox}`, ownerEmail: '' }],
    resource: 'MESSAGE',
    threshold: 80,
    readings: [{ root: 'User quota', resource: 'MESSAGE', usage: 4, limit: 5, unit: 'messages' }],
    at: new Date().toISOString(),
  });

  it('retries a mail the SMTP server refused (with backoff), without using up the hourly limit', async () => {
    await producer.send(alert('2001')); // refused once, retried about 10 s later
    await waitFor('the refusal to be seen', () => logLines.some((l) => l.includes('alert mail failed; retried with backoff')), { timeoutMs: 30_000 });
    await producer.send(alert('2002'));
    await waitFor('both mails', () => received().length >= 2, { timeoutMs: 60_000, intervalMs: 200 });
    const subjects = received().map((m) => m.subject ?? '').sort();
    assert.match(subjects[0]!, /2001@default/);
    assert.match(subjects[1]!, /2002@default/);
  });

  it('holds what is over maxMailsPerHour, and sends it as one summary', async () => {
    for (const m of ['2003', '2004', '2005']) await producer.send(alert(m));
    await waitFor('three held back', () => logLines.filter((l) => l.includes('alert mail held back')).length >= 3, { timeoutMs: 30_000 });
    assert.equal(received().length, 2);
    // The summary waits for room in the hour; bring it forward.
    const delayed = await waitFor('the summary job', async () => {
      const jobs = await producer.queue.getDelayed();
      return jobs.length > 0 ? jobs : undefined;
    });
    assert.equal(delayed.length, 1, 'one summary for all held-back alerts');
    await delayed[0]!.promote();
    await waitFor('the summary mail', () => received().length >= 3, { timeoutMs: 30_000 });
    const summary = received()[2]!;
    assert.match(summary.subject ?? '', /3 more alerts were held back \(at most 2 alert mails per hour\)/);
    for (const m of ['2003', '2004', '2005']) assert.match(summary.text ?? '', new RegExp(`${m}@default`));
    assert.deepEqual(await state.takeHeld(), [], 'the held list was emptied');
  });

  it('Redis state: firing is decided once, blocks clear once', async () => {
    assert.deepEqual(await state.apply('quota:x:MESSAGE', ['pct80', 'pct95'], []), ['pct80', 'pct95']);
    assert.deepEqual(await state.apply('quota:x:MESSAGE', ['pct80', 'pct95', 'pct100'], []), ['pct100']);
    const both = await Promise.all([state.apply('quota:x:STORAGE', ['pct80'], []), state.apply('quota:x:STORAGE', ['pct80'], [])]);
    assert.equal(both.flat().length, 1, 'two workers, one mail');
    assert.deepEqual(await state.apply('quota:x:MESSAGE', [], ['pct95', 'pct100']), []);
    assert.deepEqual([...(await state.fired('quota:x:MESSAGE'))], ['pct80']);

    const ref = { context: 'default', mailbox: '2001' };
    await state.setBlock(ref, { since: 1, attempts: 2, nextRetryAt: 3, retryJob: 'j', scope: 'quota:x:MESSAGE', reason: 'NO [OVERQUOTA]' });
    assert.equal((await state.block(ref))?.attempts, 2);
    const cleared = await Promise.all([state.clearBlock(ref), state.clearBlock(ref)]);
    assert.equal(cleared.filter(Boolean).length, 1);
    assert.equal(cleared.find(Boolean)?.scope, 'quota:x:MESSAGE');
  });
});
