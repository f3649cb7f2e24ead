/**
 * The background lane's pace (docs/sync.md, "Two lanes"): with no event around, a pass runs up to
 * sync.backgroundCalmConcurrency reconciles at once; while events are being reconciled it runs
 * sync.backgroundConcurrency. Real Redis, Dovecot and spool; the overlap is read off the
 * reconciles' own spans (each from its lock to its end), not off timings.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ReconcileRequester } from '../../src/queue/reconcile-queue.js';
import { CALM_MS } from '../../workers/reconcile.js';
import { mailboxKey, type MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const PASS = Array.from({ length: 30 }, (_, i) => String(7300 + i));
const EVENT = '7399';
const ref = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

interface Span { readonly mailbox: string; readonly from: number; readonly until: number }

/** The most spans of `spans` that held their mailboxes at one moment. */
function mostAtOnce(spans: readonly Span[]): number {
  const edges = spans.flatMap((s) => [{ t: s.from, d: 1 }, { t: s.until, d: -1 }]).sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

describe('background pace: calm and busy', { timeout: 180_000 }, () => {
  let h: Harness;
  let redis: Redis;
  let requester: ReconcileRequester;
  after(async () => {
    await requester?.close();
    redis?.disconnect();
    await h?.stop();
  });

  it('a pass runs up to 4 at once while no event is around, 1 at a time from the moment an event is being reconciled, and 4 again once the calm window has passed', async () => {
    h = await startHarness({
      boxes: [...PASS, EVENT].map((mailbox) => ({ mailbox })),
      settings: (b) => ({
        ...b,
        spool: { ...(b.spool as object), watch: false, sweepSeconds: 0 },
        imap: { ...(b.imap as object), idle: { maxAccounts: 0 } },
        sync: { ...(b.sync as object), concurrency: 1, backgroundConcurrency: 1, backgroundCalmConcurrency: 4 },
        alerts: { quotaCheckSeconds: 0 },
      }),
    });
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    requester = new ReconcileRequester(redis, h.settings.redis.prefix);
    const spans: Span[] = [];
    await h.startService({
      onReconciled: (r, _result, ms) => {
        const until = performance.now();
        spans.push({ mailbox: mailboxKey(r), from: until - ms, until });
      },
    });
    const drained = async (what: string): Promise<void> => {
      await waitFor(what, async () => (await requester.unfinished()) === 0 || undefined, { timeoutMs: 60_000, intervalMs: 50 });
    };
    await drained('the start-up pass');
    // Each pass's reconciles have emails to write, so that they last long enough to overlap.
    const PER_BOX = 3;
    const boxes = new Set(PASS.map((m) => mailboxKey(ref(m))));
    const pass = async (round: number): Promise<number> => {
      for (const m of PASS) for (let i = 0; i < PER_BOX; i++) await leaveVoicemail(h.spoolDir, ref(m), { callerid: `"Pass ${round}" <${round}>`, duration: 2 });
      const from = performance.now();
      for (const m of PASS) assert.equal(await requester.request(ref(m), 'sweep'), true);
      return from;
    };
    const passSpans = (from: number): Span[] => spans.filter((s) => s.from >= from && boxes.has(s.mailbox));
    /** Other pass reconciles that held their mailbox when `s` started. */
    const alongside = (s: Span, all: readonly Span[]): number => all.filter((t) => t !== s && t.from < s.from && s.from < t.until).length;

    const calmFrom = await pass(1);
    await drained('the calm pass');
    const calm = passSpans(calmFrom);
    assert.equal(calm.length, PASS.length);
    assert.ok(mostAtOnce(calm) > 1, `with no event around the pass ran ${mostAtOnce(calm)} at once`);
    assert.ok(mostAtOnce(calm) <= 4, `never more than backgroundCalmConcurrency: ${mostAtOnce(calm)}`);

    // The next pass starts calm; a long event reconcile (an email for each of 40 voicemails)
    // arrives in its midst. From the event's start, and for CALM_MS after its end, the pass
    // starts no reconcile beside another of its own.
    for (let i = 0; i < 40; i++) await leaveVoicemail(h.spoolDir, ref(EVENT), { callerid: `"Event ${i}" <${i}>`, duration: 1 });
    const busyFrom = await pass(2);
    await waitFor('the pass under way', () => passSpans(busyFrom).length >= 4 || undefined, { timeoutMs: 30_000, intervalMs: 5 });
    assert.equal(await requester.request(ref(EVENT), 'watcher'), true);
    await drained('the pass with an event in its midst');
    const event = spans.find((s) => s.mailbox === mailboxKey(ref(EVENT)) && s.from > busyFrom);
    assert.ok(event, 'the event was reconciled');
    const second = passSpans(busyFrom);
    assert.equal(second.length, PASS.length);
    // 100 ms: the lane's pace drops when the event's job starts, a moment before it has its lock.
    // A second short of CALM_MS after its end: the pass is still at its low pace.
    const whileBusy = second.filter((s) => s.from > event.from + 100 && s.from < event.until + CALM_MS - 1_000);
    assert.ok(whileBusy.length > 0, 'the pass had reconciles left when the event came; the test proved nothing');
    assert.deepEqual(whileBusy.map((s) => alongside(s, second)).filter((n) => n > 0), [], `${whileBusy.length} pass reconciles started while the event ran or just after it, each alone`);
    assert.ok(second.some((s) => s.from < event.from && alongside(s, second) > 0), 'before the event the pass ran several at once');

    // Once the calm window after the event has passed, with no event since, the next pass runs
    // several at once again: the lane is raised by itself, not by the next event.
    await new Promise((r) => setTimeout(r, Math.max(0, event.until + CALM_MS + 500 - performance.now())));
    const againFrom = await pass(3);
    await drained('the pass after the calm window');
    const again = passSpans(againFrom);
    assert.equal(again.length, PASS.length);
    assert.ok(mostAtOnce(again) > 1, `after the calm window the pass ran ${mostAtOnce(again)} at once`);
    await drained('the last events');
  });
});
