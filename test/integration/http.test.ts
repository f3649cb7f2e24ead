/**
 * The HTTP listener of a running service: /metrics scraped and read as a Prometheus scraper reads
 * it, moving when work happens (a voicemail reconciled, its lamp published to an AMI target);
 * /readyz naming every component, degraded (200) when the AMI target is gone, 503 once the IMAP
 * server and then Redis are gone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { ConfigError } from '../../src/errors.js';
import type { Service } from '../../src/service.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { parseExposition, type Exposition } from '../support/prom-text.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startTcpRelay, type TcpRelay } from '../support/tcp-relay.js';
import { waitFor } from '../support/wait.js';

interface Component {
  name: string;
  kind: string;
  required: boolean;
  status: string;
  detail: string;
}
interface ReadyBody {
  status: string;
  components: Component[];
}

describe('health, readiness and metrics over HTTP', { timeout: 120_000 }, () => {
  let h: Harness;
  let port: number;
  let redis: RedisServer;
  /** The service reaches Redis through this, so Redis can be made unreachable and back. */
  let toRedis: TcpRelay;
  let phone: AmiTestServer;
  let phoneSpool: string;
  let service: Service;
  before(async () => {
    port = await freePort();
    redis = await startRedis();
    toRedis = await startTcpRelay(Number(new URL(redis.url).port));
    // The target's own spool: an mwiext Asterisk shows what MWIUpdate tells it.
    phoneSpool = await mkdtemp(join(tmpdir(), 'vmb-http-ami-'));
    phone = await startAmiServer({ spoolDir: phoneSpool, profile: 'mwiext' });
    h = await startHarness({
      boxes: [{ mailbox: '5000' }],
      settings: (base) => ({
        ...base,
        redis: { url: `redis://127.0.0.1:${toRedis.port}`, prefix: 'thttp' },
        http: { host: '127.0.0.1', port },
        // Any deletion of most of a mailbox trips the safety stop, so one email deleted does.
        sync: { ...(base.sync as object), maxDeleteFloor: 0 },
        mwi: { targets: [{ name: 'phone', kind: 'ami-mwiupdate', host: '127.0.0.1', port: phone.port, username: 'bridge', secret: 'bridge' }], retrySeconds: 1, retryMaxSeconds: 2 },
      }),
    });
    service = await h.startService();
  });
  after(async () => {
    // Back for the service's shutdown, which waits for its queues to close.
    await toRedis?.restore();
    await h?.stop();
    await toRedis?.close();
    await phone?.close().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    if (phoneSpool) await rm(phoneSpool, { recursive: true, force: true });
  });

  const get = async (path: string): Promise<{ status: number; type: string; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  };
  const scrape = async (): Promise<Exposition> => {
    const res = await get('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    return parseExposition(res.body);
  };
  const ready = async (): Promise<{ status: number; body: ReadyBody }> => {
    const res = await get('/readyz');
    assert.match(res.type, /^application\/json/);
    return { status: res.status, body: JSON.parse(res.body) as ReadyBody };
  };
  const component = (r: ReadyBody, name: string): Component => {
    const c = r.components.find((x) => x.name === name);
    assert.ok(c, `${name} in ${JSON.stringify(r.components.map((x) => x.name))}`);
    return c;
  };

  it('answers /healthz; unknown paths are 404; every metric is there in the exposition format, typed', async () => {
    assert.equal((await get('/healthz')).body, 'ok\n');
    assert.equal((await get('/nope')).status, 404);
    const m = await scrape();
    const want: Record<string, string> = {
      vmbridge_reconciles_total: 'counter',
      vmbridge_reconcile_failures_total: 'counter',
      vmbridge_ops_total: 'counter',
      vmbridge_last_reconcile_seconds: 'gauge',
      vmbridge_reconcile_duration_seconds: 'histogram',
      vmbridge_spool_lock_holds_total: 'counter',
      vmbridge_spool_lock_hold_seconds_max: 'gauge',
      vmbridge_spool_lock_wait_seconds_max: 'gauge',
      vmbridge_spool_lock_timeouts_total: 'counter',
      vmbridge_push_notices_total: 'counter',
      vmbridge_push_last_notice_timestamp_seconds: 'gauge',
      vmbridge_stale_mailboxes: 'gauge',
      vmbridge_uptime_seconds: 'gauge',
      vmbridge_mwi_publishes_total: 'counter',
      vmbridge_mwi_publish_duration_seconds: 'histogram',
      vmbridge_deletion_guard_trips_total: 'counter',
      vmbridge_delete_breaker_open: 'gauge',
      vmbridge_queue_jobs: 'gauge',
      vmbridge_imap_connections: 'gauge',
      vmbridge_imap_connection_waiters: 'gauge',
      process_cpu_user_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(want)) assert.equal(m.types.get(name), type, name);
    assert.equal(m.value('vmbridge_deletion_guard_trips_total', { guard: 'safety-stop' }), 0);
    assert.equal(m.value('vmbridge_deletion_guard_trips_total', { guard: 'delete-breaker' }), 0);
    assert.equal(m.value('vmbridge_delete_breaker_open'), 0);
    assert.equal(m.value('vmbridge_mwi_publishes_total', { target: 'phone', outcome: 'failed' }), 0);
    assert.equal(m.value('vmbridge_stale_mailboxes'), 0);
    // No series names a mailbox.
    assert.ok(!m.samples.some((s) => Object.values(s.labels).some((v) => v.includes('5000'))));
  });

  it('a voicemail reconciled raises the reconcile histogram, its lamp the publish counter and histogram', async () => {
    const before = await scrape();
    const count = (m: Exposition, name: string, labels: Record<string, string> = {}): number => m.value(name, labels) ?? 0;
    await leaveVoicemail(h.spoolDir, { context: 'default', mailbox: '5000' }, { callerid: '"M" <1>', duration: 1 });
    const after = await waitFor('an append and a publication in the metrics', async () => {
      const m = await scrape();
      const published = count(m, 'vmbridge_mwi_publishes_total', { target: 'phone', outcome: 'ok' }) > count(before, 'vmbridge_mwi_publishes_total', { target: 'phone', outcome: 'ok' });
      // The publication is made inside the reconcile job, so its job may still be active on this
      // scrape; BullMQ's own counts are read from Redis, within the scrape's time limit.
      const jobsDone = count(m, 'vmbridge_queue_jobs', { queue: 'reconcile', state: 'completed' }) >= 1 && count(m, 'vmbridge_queue_jobs', { queue: 'mwi-phone', state: 'completed' }) >= 1;
      return count(m, 'vmbridge_ops_total', { kind: 'append', reason: 'new-on-phone' }) >= 1 && published && jobsDone ? m : undefined;
    });
    assert.ok(count(after, 'vmbridge_reconcile_duration_seconds_count') > count(before, 'vmbridge_reconcile_duration_seconds_count'));
    assert.ok(count(after, 'vmbridge_reconcile_duration_seconds_bucket', { le: '+Inf' }) > count(before, 'vmbridge_reconcile_duration_seconds_bucket', { le: '+Inf' }));
    assert.ok(count(after, 'vmbridge_reconciles_total') > count(before, 'vmbridge_reconciles_total'));
    assert.equal(count(after, 'vmbridge_reconcile_failures_total'), 0);
    assert.ok(count(after, 'vmbridge_mwi_publish_duration_seconds_count', { target: 'phone', outcome: 'ok' }) > count(before, 'vmbridge_mwi_publish_duration_seconds_count', { target: 'phone', outcome: 'ok' }));
    // The jobs that did it, as BullMQ counts them in Redis at scrape time.
    assert.ok(count(after, 'vmbridge_queue_jobs', { queue: 'reconcile', state: 'completed' }) >= 1);
    assert.ok(count(after, 'vmbridge_queue_jobs', { queue: 'mwi-phone', state: 'completed' }) >= 1);
    assert.equal(after.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'failed' }), 0);
    // The reconcile's IMAP command connection stays open for the next one (imap.idleCloseSeconds).
    assert.ok(count(after, 'vmbridge_imap_connections', { kind: 'command' }) >= 1);
    assert.equal(after.value('vmbridge_imap_connections', { kind: 'idle' }) !== undefined, true);
  });

  it('the one email of a mailbox deleted in the mail client trips the safety stop: counted, the mailbox stale', async () => {
    const ref = { context: 'default', mailbox: '5000' };
    const mc = await h.mail(ref);
    await waitFor('the email', async () => ((await mc.list(['INBOX'])).length === 1 ? true : undefined));
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageDelete('1:*');
    } finally {
      lock.release();
    }
    await service.requester.request(ref, 'test', { force: true });
    const m = await waitFor('the safety stop in the metrics', async () => {
      const e = await scrape();
      return (e.value('vmbridge_deletion_guard_trips_total', { guard: 'safety-stop' }) ?? 0) >= 1 ? e : undefined;
    });
    assert.equal(m.value('vmbridge_deletion_guard_trips_total', { guard: 'delete-breaker' }), 0);
    assert.equal(m.value('vmbridge_stale_mailboxes'), 1);
  });

  it('/readyz names every component; the AMI target gone degrades (200), the IMAP server gone or Redis gone is 503', async () => {
    const up = await waitFor('the MWI target up in /readyz', async () => {
      const r = await ready();
      return r.body.components.find((c) => c.name === 'mwi-target phone')?.status === 'up' ? r : undefined;
    });
    assert.equal(up.status, 200);
    assert.equal(up.body.status, 'ready');
    assert.deepEqual(component(up.body, 'redis'), { ...component(up.body, 'redis'), kind: 'redis', required: true, status: 'up' });
    const imapName = `imap 127.0.0.1:${h.imap.port}`;
    assert.deepEqual(component(up.body, imapName), { ...component(up.body, imapName), kind: 'imap', required: true, status: 'up' });
    assert.equal(component(up.body, 'mwi-target phone').required, false);

    await phone.close();
    const degraded = await waitFor('the MWI target down', async () => {
      const r = await ready();
      return component(r.body, 'mwi-target phone').status === 'down' ? r : undefined;
    });
    assert.equal(degraded.status, 200);
    assert.equal(degraded.body.status, 'degraded');

    await h.dovecot.stop();
    const noImap = await ready();
    assert.equal(noImap.status, 503);
    assert.equal(noImap.body.status, 'not-ready');
    assert.equal(component(noImap.body, imapName).status, 'down');
    assert.equal(component(noImap.body, 'redis').status, 'up');

    await toRedis.cut();
    const noRedis = await waitFor('Redis down in /readyz', async () => {
      const r = await ready();
      return component(r.body, 'redis').status === 'down' ? r : undefined;
    });
    assert.equal(noRedis.status, 503);
    // /metrics still answers without Redis: the series read from it are left out.
    const m = await scrape();
    assert.equal(m.value('vmbridge_queue_jobs', { queue: 'reconcile', state: 'completed' }), undefined);
    assert.ok((m.value('vmbridge_reconciles_total') ?? 0) >= 1);

    await toRedis.restore();
    await waitFor('Redis up again in /readyz', async () => component((await ready()).body, 'redis').status === 'up' || undefined, { timeoutMs: 20_000 });
  });

});

describe('a taken http.port', { timeout: 60_000 }, () => {
  it('stops the start with a ConfigError naming http.port, and leaves nothing running', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as AddressInfo).port;
    const h = await startHarness({ boxes: [{ mailbox: '5100' }], settings: (base) => ({ ...base, http: { host: '127.0.0.1', port } }) });
    try {
      await assert.rejects(h.startService(), (err: unknown) => err instanceof ConfigError && err.key === 'http.port' && err.message.includes(`127.0.0.1:${port}`));
    } finally {
      // Returns only if the failed start closed its workers and connections.
      await h.stop();
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});
