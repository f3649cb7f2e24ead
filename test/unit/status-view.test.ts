import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatusView, percentile } from '../../src/status/status-view.js';
import type { BoxStatus, LatencySample, QuotaStatus } from '../../src/status/status-store.js';

const box = (mailbox: string, imapUser = `u${mailbox}`) => ({ ref: { context: 'default', mailbox }, owner: `Owner ${mailbox}`, imapUser });
const T0 = Date.parse('2026-01-01T12:00:00Z');

function snapshot(boxes: Record<string, BoxStatus>, quota: Record<string, QuotaStatus> = {}, latency: LatencySample[] = []) {
  return { boxes: new Map(Object.entries(boxes)), quota: new Map(Object.entries(quota)), latency };
}

describe('status view', () => {
  it('one row per mailbox of the directory, problems first; a failure older than the last reconcile is history, not a problem', () => {
    const v = buildStatusView(
      [box('1'), box('2'), box('3'), box('4'), box('5')],
      snapshot({
        '1@default': { reconciledAt: T0, ms: 12, store: 3, imap: 3, applied: 0, counts: { new: 1, old: 2, urgent: 0 } },
        '2@default': { reconciledAt: T0, failedAt: T0 + 1000, error: 'IMAP down' },
        '3@default': { reconciledAt: T0 + 5000, failedAt: T0 + 1000, error: 'old failure' },
        '4@default': { reconciledAt: T0 },
        'gone@default': { reconciledAt: T0 },
      }),
      [{ mailbox: '4@default', since: '2026-01-01T11:00:00.000Z', reason: 'login in back-off' }],
      T0 + 10_000,
    );
    assert.deepEqual(v.mailboxes.map((r) => [r.mailbox, r.state]), [['4@default', 'stale'], ['2@default', 'failing'], ['5@default', 'waiting'], ['1@default', 'ok'], ['3@default', 'ok']]);
    assert.deepEqual(v.totals, { mailboxes: 5, ok: 2, failing: 1, stale: 1, waiting: 1 });
    const one = v.mailboxes.find((r) => r.mailbox === '1@default');
    assert.deepEqual(one, { mailbox: '1@default', owner: 'Owner 1', imapUser: 'u1', state: 'ok', store: 3, imap: 3, new: 1, old: 2, urgent: 0, reconciledAt: '2026-01-01T12:00:00.000Z', reconcileMs: 12, applied: 0 });
    assert.equal(v.mailboxes.find((r) => r.mailbox === '2@default')?.error, 'IMAP down');
    assert.equal(v.mailboxes.find((r) => r.mailbox === '3@default')?.error, undefined);
    assert.equal(v.mailboxes.find((r) => r.mailbox === '4@default')?.staleReason, 'login in back-off');
  });

  it('quota: the fullest resource of the account, shared by the mailboxes on it; a limit of 0 is no reading', () => {
    const v = buildStatusView([box('1', 'shared'), box('2', 'shared'), box('3')], snapshot({}, {
      shared: { at: T0, readings: [{ resource: 'STORAGE', usage: 50, limit: 200 }, { resource: 'MESSAGE', usage: 9, limit: 10 }] },
      u3: { at: T0, readings: [{ resource: 'STORAGE', usage: 5, limit: 0 }] },
    }), [], T0);
    for (const r of v.mailboxes.filter((x) => x.imapUser === 'shared')) {
      assert.equal(r.quotaPercent, 90);
      assert.equal(r.quotaResource, 'MESSAGE');
    }
    assert.equal(v.mailboxes.find((r) => r.mailbox === '3@default')?.quotaPercent, undefined);
  });

  it('change-to-lamp series per target, oldest first, with nearest-rank percentiles', () => {
    const latency: LatencySample[] = [];
    for (let i = 0; i < 20; i++) latency.push({ at: T0 + (20 - i) * 1000, target: 'phones', ms: (20 - i) * 10 });
    latency.push({ at: T0, target: 'ami', ms: 7 });
    const v = buildStatusView([], snapshot({}, {}, latency), [], T0);
    assert.deepEqual(v.latency.map((s) => s.target), ['ami', 'phones']);
    const phones = v.latency[1];
    assert.ok(phones);
    assert.equal(phones.samples.length, 20);
    assert.deepEqual(phones.samples.slice(0, 2).map((s) => s.ms), [10, 20]);
    assert.equal(phones.p50Ms, 100);
    assert.equal(phones.p95Ms, 190);
    assert.equal(phones.maxMs, 200);
    assert.deepEqual([percentile([], 50), percentile([5], 99), percentile([1, 2, 3, 4], 50)], [0, 5, 2]);
  });
});
