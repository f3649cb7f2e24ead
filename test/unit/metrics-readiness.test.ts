import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ago, arrivalResults } from '../../src/cli/doctor/push.js';
import { DEFAULT_HTTP_PORT, settingsSchema } from '../../src/config/schema.js';
import { connect, createServer, type AddressInfo } from 'node:net';
import { ConfigError } from '../../src/errors.js';
import { Metrics } from '../../src/http/metrics.js';
import { startHttpServer } from '../../src/http/server.js';
import { mwiTargetState, pushStates } from '../../src/http/ready-checks.js';
import { checkReadiness, httpStatusOf, summarizeReadiness, type ComponentReport } from '../../src/http/readiness.js';
import { judgeGreeting } from '../../src/imap/probe.js';
import { senderName } from '../../src/queue/push-seen.js';
import type { Op } from '../../src/sync/plan.js';
import { parseExposition } from '../support/prom-text.js';

const op = (kind: string, reason: string): Op => ({ kind, reason }) as unknown as Op; // only kind and reason are read

describe('Metrics (prom-client registry)', () => {
  it('keeps the older names and counts reconciles, ops, pushes, publications and guard trips', async () => {
    const m = new Metrics({}, { defaultMetrics: false });
    m.targets(['owner']);
    m.reconciled([op('append', 'new-on-phone'), op('append', 'new-on-phone')], 120);
    m.failed();
    m.push('queued');
    m.published('owner', 'ok', 4);
    m.published('owner', 'failed', 2_000);
    m.guardTripped('delete-breaker');
    m.staleness('5000@default', true);
    const e = parseExposition(await m.render());
    assert.equal(e.value('vmbridge_reconciles_total'), 1);
    assert.equal(e.value('vmbridge_reconcile_failures_total'), 1);
    assert.equal(e.value('vmbridge_ops_total', { kind: 'append', reason: 'new-on-phone' }), 2);
    assert.equal(e.value('vmbridge_last_reconcile_seconds'), 0.12);
    assert.equal(e.value('vmbridge_reconcile_duration_seconds_count'), 1);
    assert.equal(e.value('vmbridge_reconcile_duration_seconds_bucket', { le: '0.1' }), 0);
    assert.equal(e.value('vmbridge_reconcile_duration_seconds_bucket', { le: '0.25' }), 1);
    assert.equal(e.value('vmbridge_push_notices_total', { outcome: 'queued' }), 1);
    assert.equal(e.value('vmbridge_push_notices_total', { outcome: 'refused' }), 0);
    assert.equal(e.value('vmbridge_mwi_publishes_total', { target: 'owner', outcome: 'ok' }), 1);
    assert.equal(e.value('vmbridge_mwi_publishes_total', { target: 'owner', outcome: 'failed' }), 1);
    assert.equal(e.value('vmbridge_mwi_publish_duration_seconds_bucket', { target: 'owner', outcome: 'failed', le: '2.5' }), 1);
    assert.equal(e.value('vmbridge_deletion_guard_trips_total', { guard: 'delete-breaker' }), 1);
    assert.equal(e.value('vmbridge_deletion_guard_trips_total', { guard: 'safety-stop' }), 0);
    assert.equal(e.value('vmbridge_stale_mailboxes'), 1);
    assert.equal(e.types.get('vmbridge_spool_lock_holds_total'), 'counter');
    assert.equal(e.types.has('process_cpu_user_seconds_total'), false);
  });

  it('reads queues, IMAP connections and the breaker at scrape time; a reader that does not answer leaves its series out (NaN for the breaker)', async () => {
    let depth = 3;
    const m = new Metrics({
      queues: async () => [{ queue: 'reconcile', counts: { waiting: depth, failed: 1 } }],
      imapConnections: () => ({ command: 2, idle: 1, waiting: 0 }),
      breakerOpen: () => new Promise<boolean>(() => undefined), // never answers
      timeoutMs: 50,
    }, { defaultMetrics: false });
    let e = parseExposition(await m.render());
    assert.equal(e.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'waiting' }), 3);
    assert.equal(e.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'active' }), 0);
    assert.equal(e.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'failed' }), 1);
    assert.equal(e.value('vmbridge_imap_connections', { kind: 'command' }), 2);
    assert.ok(Number.isNaN(e.value('vmbridge_delete_breaker_open')));
    depth = 0;
    e = parseExposition(await m.render());
    assert.equal(e.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'waiting' }), 0);
  });

  it('adds the default process metrics unless told not to', async () => {
    const e = parseExposition(await new Metrics().render());
    assert.equal(e.types.get('process_cpu_user_seconds_total'), 'counter');
  });
});

const report = (name: string, required: boolean, status: ComponentReport['status']): ComponentReport => ({ name, kind: 'imap', required, status, detail: '' });

describe('readiness', () => {
  it('ready when all are up; degraded (200) when an optional one is down; 503 when a required one is not up', () => {
    const ready = summarizeReadiness([report('redis', true, 'up'), report('push', false, 'unknown')]);
    assert.equal(ready.status, 'ready');
    assert.equal(httpStatusOf(ready), 200);
    const degraded = summarizeReadiness([report('redis', true, 'up'), report('ami', false, 'down')]);
    assert.deepEqual([degraded.status, httpStatusOf(degraded)], ['degraded', 200]);
    const down = summarizeReadiness([report('redis', true, 'up'), report('imap', true, 'down')]);
    assert.deepEqual([down.status, httpStatusOf(down)], ['not-ready', 503]);
    assert.equal(summarizeReadiness([report('imap', true, 'unknown')]).status, 'not-ready');
  });

  it('a check that throws or does not answer in time is down, by name', async () => {
    const r = await checkReadiness([
      { name: 'redis', kind: 'redis', required: true, check: () => new Promise(() => undefined) },
      { name: 'imap x', kind: 'imap', required: true, check: async () => { throw new Error('refused'); } },
      { name: 'dovecot-push', kind: 'dovecot-push', required: false, check: async () => [{ name: 'dovecot-push a', status: 'up', detail: '' }, { name: 'dovecot-push b', status: 'up', detail: '' }] },
    ], 50);
    assert.deepEqual(r.components.map((c) => [c.name, c.status, c.required]), [['redis', 'down', true], ['imap x', 'down', true], ['dovecot-push a', 'up', false], ['dovecot-push b', 'up', false]]);
    assert.match(r.components[0]!.detail, /no answer within 0.05 s/);
    assert.equal(r.components[1]!.detail, 'refused');
  });

  it('IMAP greetings: OK and PREAUTH take sessions, BYE and anything else do not', () => {
    assert.equal(judgeGreeting('* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n').ok, true);
    assert.equal(judgeGreeting('* PREAUTH ready\r\n').ok, true);
    assert.deepEqual(judgeGreeting('* BYE too many connections\r\n'), { ok: false, text: 'the server refuses sessions: * BYE too many connections' });
    assert.equal(judgeGreeting('+OK POP3 ready\r\n').ok, false);
  });

  it('an MWI target: its AMI session, else its last publication, else unknown', () => {
    assert.equal(mwiTargetState({ name: 'a', kind: 'ami-refresh', connection: 'connected' }).status, 'up');
    assert.equal(mwiTargetState({ name: 'a', kind: 'ami-refresh', connection: 'disconnected', last: { at: 1, ok: true } }).status, 'down');
    assert.equal(mwiTargetState({ name: 'a', kind: 'ami-refresh', connection: 'not-started' }).status, 'unknown');
    assert.equal(mwiTargetState({ name: 'a', kind: 'ami-refresh', connection: 'not-started', last: { at: 1, ok: false, error: 'ECONNREFUSED' } }).detail, 'the last publication failed: ECONNREFUSED');
    assert.equal(mwiTargetState({ name: 'p', kind: 'sip-notify', last: { at: 1, ok: true } }).status, 'up');
    assert.equal(mwiTargetState({ name: 'p', kind: 'sip-notify' }).status, 'unknown');
  });

  it('Dovecot push: each sender with the age of its last POST; none seen is unknown', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    assert.deepEqual(pushStates([], now).map((s) => [s.name, s.status]), [['dovecot-push', 'unknown']]);
    const [s] = pushStates([{ sender: '10.0.0.5', at: '2026-01-01T11:59:00.000Z' }], now);
    assert.deepEqual([s!.name, s!.status, s!.data?.ageSeconds], ['dovecot-push 10.0.0.5', 'up', 60]);
    assert.equal(senderName('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(senderName('::1'), '::1');
    assert.equal(senderName(undefined), 'unknown');
  });

  it('doctor: whether push arrives, per sender', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    assert.equal(arrivalResults([], now)[0]!.status, 'warn');
    const [r] = arrivalResults([{ sender: '127.0.0.1', at: '2026-01-01T10:00:00.000Z' }], now);
    assert.equal(r!.status, 'ok');
    assert.match(r!.message, /^POSTs arrive from 127\.0\.0\.1: the last 2 h ago/);
    assert.equal(ago(30), '30 s ago');
    assert.equal(ago(600), '10 min ago');
    assert.equal(ago(3 * 86_400), '3 days ago');
  });
});

describe('the HTTP listener setting', () => {
  it('is on by default, on loopback, at the documented port', () => {
    const s = settingsSchema.parse({ imap: { host: 'mail.example.com' } });
    assert.deepEqual([s.http.host, s.http.port], ['127.0.0.1', 9465]);
    assert.equal(DEFAULT_HTTP_PORT, 9465);
    assert.equal(settingsSchema.parse({ imap: { host: 'h' }, http: { port: 0 } }).http.port, 0);
  });

  it('a port already in use is a ConfigError naming http.port', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startHttpServer({ host: '127.0.0.1', port, metrics: new Metrics({}, { defaultMetrics: false }), readiness: () => [] }),
        (err: unknown) => err instanceof ConfigError && err.key === 'http.port' && err.message.includes(`127.0.0.1:${port}`) && err.message.includes('VMBRIDGE_HTTP_PORT'),
      );
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});

describe('http server: a push POST where push is off', () => {
  it('is refused with 404 only once its body has arrived, so Dovecot is not left waiting out its timeout', async () => {
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({}, { defaultMetrics: false }), readiness: () => [] });
    const port = (server.address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    try {
      await new Promise<void>((r) => socket.once('connect', () => r()));
      const body = '{"user":"u","events":[{"event":"MessageNew","mailbox":"INBOX","uid":1}]}';
      socket.write(`POST /dovecot-push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(got, '', 'no answer while the body is still coming');
      socket.write(body.slice(10));
      for (let i = 0; i < 200 && !got.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(got, /^HTTP\/1\.1 404 /);
      assert.match(got, /http\.push\.enabled/);
    } finally {
      socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
