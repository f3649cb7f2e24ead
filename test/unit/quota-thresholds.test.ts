/**
 * The alerting rules: thresholds crossed up and down, the re-arm margin, several resources, a
 * refused APPEND, maxmsg, the retry backoff and the flood cap. Pure functions first, then the
 * quota watch over an in-memory store (the same decisions the Redis store records).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ImapFlow } from 'imapflow';
import { FLOOD_WINDOW_MS, floodDecision, summaryLines } from '../../src/alerts/flood-cap.js';
import { crossings, forceFull, highest, maxmsgLevel, percentOf, quotaLevels, retryDelaySeconds, type Level } from '../../src/alerts/quota.js';
import type { AlertStore, QuotaBlock } from '../../src/alerts/state.js';
import { QuotaWatch, maxmsgScope, quotaScope } from '../../src/alerts/watch.js';
import type { ReconcileOutcome } from '../../src/sync/after-reconcile.js';
import { settingsSchema } from '../../src/config/schema.js';
import type { ServerCapabilities } from '../../src/imap/capabilities.js';
import type { QuotaReading } from '../../src/imap/quota.js';
import { createLogger } from '../../src/log.js';
import type { AlertJob } from '../../src/queue/alert-queue.js';
import type { MwiCounts } from '../../src/mwi/counts.js';
import type { MailboxRef } from '../../src/spool/types.js';
import type { BoxInfo, Directory } from '../../src/sync/directory.js';

const T = [80, 95, 100];

/** Applies a transition to a fired set the way the store does; returns the newly fired ids. */
function commit(fired: Set<string>, fire: readonly Level[], rearm: readonly string[]): string[] {
  for (const id of rearm) fired.delete(id);
  const added: string[] = [];
  for (const l of fire) if (!fired.has(l.id)) {
    fired.add(l.id);
    added.push(l.id);
  }
  return added;
}

/** Feeds readings one by one; returns the level each reading mailed about (or undefined). */
function run(levels: readonly Level[], usages: readonly number[], fired = new Set<string>()): (string | undefined)[] {
  return usages.map((u) => {
    const t = crossings(levels, u, fired);
    const added = commit(fired, t.fire, t.rearm);
    return highest(levels.filter((l) => added.includes(l.id)))?.id;
  });
}

describe('quotaLevels', () => {
  it('places each threshold and its re-arm point in the resource units, exactly', () => {
    assert.deepEqual(quotaLevels(5, T, 5), [
      { id: 'pct80', fireAt: 4, rearmBelow: 3.75, percent: 80 },
      { id: 'pct95', fireAt: 4.75, rearmBelow: 4.5, percent: 95 },
      { id: 'pct100', fireAt: 5, rearmBelow: 4.75, percent: 100 },
    ]);
    const bytes = quotaLevels(100 * 1024 * 1024, [80], 5)[0]!;
    assert.equal(bytes.fireAt, 80 * 1024 * 1024);
    assert.equal(bytes.rearmBelow, 75 * 1024 * 1024);
  });

  it('sorts, drops duplicates and non-positive thresholds', () => {
    assert.deepEqual(quotaLevels(100, [100, 80, 80, 0, -5, 95], 5).map((l) => l.id), ['pct80', 'pct95', 'pct100']);
  });

  it('has no levels without a positive, finite limit (unlimited resources)', () => {
    assert.deepEqual(quotaLevels(0, T, 5), []);
    assert.deepEqual(quotaLevels(-1, T, 5), []);
    assert.deepEqual(quotaLevels(Number.POSITIVE_INFINITY, T, 5), []);
    assert.deepEqual(quotaLevels(Number.NaN, T, 5), []);
  });

  it('never puts a re-arm point below zero or above its threshold', () => {
    const [l] = quotaLevels(10, [3], 10);
    assert.equal(l!.rearmBelow, 0);
    const [z] = quotaLevels(10, [80], 0);
    assert.equal(z!.rearmBelow, z!.fireAt);
    const [n] = quotaLevels(10, [80], -3);
    assert.equal(n!.rearmBelow, n!.fireAt, 'a negative margin counts as 0');
  });
});

describe('crossings: one mail per upward crossing', () => {
  const levels = quotaLevels(5, T, 5); // a MESSAGE quota of 5

  it('fires each threshold once on the way up', () => {
    assert.deepEqual(run(levels, [0, 1, 2, 3, 4, 4, 4]), [undefined, undefined, undefined, undefined, 'pct80', undefined, undefined]);
  });

  it('fires several thresholds crossed at once together, mailing about the highest', () => {
    const fired = new Set<string>();
    const t = crossings(levels, 5, fired);
    assert.deepEqual(t.fire.map((l) => l.id), ['pct80', 'pct95', 'pct100']);
    assert.equal(highest(t.fire)?.id, 'pct100');
    assert.deepEqual(run(levels, [5], new Set()), ['pct100']);
    // 80% already fired: 4 -> 5 crosses 95 and 100 together, one mail.
    assert.deepEqual(run(levels, [4, 5]), ['pct80', 'pct100']);
  });

  it('does not re-arm within the margin, so hovering at a threshold sends nothing more', () => {
    const storage = quotaLevels(1000, T, 5);
    // 80% fires; 78%, 76%, 75% stay above the 75% re-arm point; back to 80%: still quiet.
    assert.deepEqual(run(storage, [800, 780, 760, 750, 800, 790, 820]), ['pct80', undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('re-arms below threshold - margin, and then fires again on the next way up', () => {
    const storage = quotaLevels(1000, T, 5);
    assert.deepEqual(run(storage, [800, 749, 800]), ['pct80', undefined, 'pct80']);
    // The re-arm itself is reported (it is logged), and it mails nothing.
    const fired = new Set(['pct80']);
    const t = crossings(storage, 749, fired);
    assert.deepEqual(t.rearm, ['pct80']);
    assert.deepEqual(t.fire, []);
  });

  it('re-arms only the thresholds usage fell below', () => {
    const fired = new Set(['pct80', 'pct95', 'pct100']);
    // 4 of 5 = 80%: below 95-5 and 100-5, not below 80-5.
    assert.deepEqual(crossings(levels, 4, fired).rearm, ['pct100', 'pct95']);
    assert.deepEqual(crossings(levels, 3, fired).rearm, ['pct100', 'pct80', 'pct95']);
  });

  it('full, emptied, full again: exactly the expected mails', () => {
    assert.deepEqual(run(levels, [3, 4, 5, 5, 2, 3, 4, 5]), [undefined, 'pct80', 'pct100', undefined, undefined, undefined, 'pct80', 'pct100']);
  });

  it('with margin 0, re-arms as soon as usage is below the threshold', () => {
    const l = quotaLevels(100, [80], 0);
    assert.deepEqual(run(l, [80, 79, 80, 80]), ['pct80', undefined, 'pct80', undefined]);
  });

  it('forgets fired levels that no longer exist (thresholds changed, limit removed)', () => {
    assert.deepEqual(crossings(levels, 5, new Set(['pct90', 'pct100'])).rearm, ['pct90']);
    assert.deepEqual(crossings([], 5, new Set(['pct80'])).rearm, ['pct80']);
  });

  it('a raised limit re-arms what the new percentage is below', () => {
    const fired = new Set<string>();
    run(quotaLevels(5, T, 5), [5], fired);
    // The administrator doubles the quota: 5 of 10 is 50%.
    assert.deepEqual(crossings(quotaLevels(10, T, 5), 5, fired).rearm, ['pct100', 'pct80', 'pct95']);
  });

  it('keeps several resources apart: each has its own fired state', () => {
    const storage = quotaLevels(200 * 1024, T, 5);
    const messages = quotaLevels(5, T, 5);
    const firedS = new Set<string>();
    const firedM = new Set<string>();
    assert.deepEqual(run(storage, [170 * 1024], firedS), ['pct80']);
    assert.deepEqual(run(messages, [2], firedM), [undefined]);
    assert.deepEqual(run(messages, [4], firedM), ['pct80'], 'MESSAGE reaching 80% mails although STORAGE 80% already fired');
    assert.deepEqual([...firedS], ['pct80']);
  });

  it('property: between two mails about one level, usage went below its re-arm point', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 60 }), fc.integer({ min: 0, max: 20 }), (limit, raw, margin) => {
        const lv = quotaLevels(limit, T, margin);
        const usages = raw.map((u) => Math.min(u, limit * 1.2));
        const fired = new Set<string>();
        const lastFire = new Map<string, number>();
        usages.forEach((u, i) => {
          const t = crossings(lv, u, fired);
          const added = commit(fired, t.fire, t.rearm);
          for (const id of added) {
            const level = lv.find((l) => l.id === id)!;
            assert.ok(u >= level.fireAt, 'fires only at or above the threshold');
            const prev = lastFire.get(id);
            if (prev !== undefined) {
              assert.ok(usages.slice(prev + 1, i).some((x) => x < level.rearmBelow), `${id} fired twice without going below ${level.rearmBelow}`);
            }
            lastFire.set(id, i);
          }
          // After each reading, exactly the levels whose history says so are fired.
          for (const l of lv) if (u >= l.fireAt) assert.ok(fired.has(l.id), `${l.id} must be fired at ${u}`);
          for (const l of lv) if (u < l.rearmBelow) assert.ok(!fired.has(l.id), `${l.id} must be re-armed at ${u}`);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('property: at most one mail per reading, about the highest newly fired level', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 40 }), (usages) => {
        const fired = new Set<string>();
        for (const u of usages) {
          const t = crossings(levels, u, fired);
          const added = commit(fired, t.fire, t.rearm);
          const top = highest(levels.filter((l) => added.includes(l.id)));
          if (added.length > 0) assert.equal(top!.fireAt, Math.max(...levels.filter((l) => added.includes(l.id)).map((l) => l.fireAt)));
        }
      }),
    );
  });
});

describe('forceFull (the server refused an APPEND)', () => {
  const levels = quotaLevels(200, T, 5);
  it('fires every level not fired yet and re-arms nothing, whatever the reading', () => {
    const t = forceFull(levels, new Set(['pct80']));
    assert.deepEqual(t.fire.map((l) => l.id), ['pct95', 'pct100']);
    assert.deepEqual(t.rearm, []);
  });
  it('fires nothing when the mailbox is already known to be full', () => {
    assert.deepEqual(forceFull(levels, new Set(['pct80', 'pct95', 'pct100'])).fire, []);
  });
});

describe('maxmsgLevel', () => {
  it('fires maxmsg - margin messages before the folder is full, re-arms the margin percent below', () => {
    assert.deepEqual(maxmsgLevel(100, 2, 5), { id: 'maxmsg', fireAt: 98, rearmBelow: 93, percent: 98 });
    const l = maxmsgLevel(10, 2, 5)!; // fires at 8, re-arms below 7.5
    assert.deepEqual(run([l], [7, 8, 8, 7, 8, 9, 7, 8]), [undefined, 'maxmsg', undefined, undefined, 'maxmsg', undefined, undefined, 'maxmsg']);
  });
  it('re-arms only below fireAt - margin', () => {
    const l = maxmsgLevel(100, 2, 5)!; // fires at 98, re-arms below 93
    assert.deepEqual(run([l], [98, 95, 93, 99, 92, 98]), ['maxmsg', undefined, undefined, undefined, undefined, 'maxmsg']);
  });
  it('has nothing to warn about for a greetings-only mailbox, and never fires at 0 messages', () => {
    assert.equal(maxmsgLevel(0, 2, 5), undefined);
    assert.equal(maxmsgLevel(2, 5, 5)!.fireAt, 1);
  });
});

describe('retryDelaySeconds', () => {
  it('doubles from the base and stops at the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelaySeconds(n, 60, 1800)), [60, 120, 240, 480, 960, 1800, 1800]);
    assert.equal(retryDelaySeconds(0, 60, 1800), 60);
    assert.equal(retryDelaySeconds(10_000, 60, 1800), 1800);
    assert.ok(Number.isFinite(retryDelaySeconds(10_000, 60, Number.MAX_SAFE_INTEGER)));
  });
});

describe('percentOf', () => {
  it('is usage over limit in percent, undefined without a limit', () => {
    assert.equal(percentOf(4, 5), 80);
    assert.equal(percentOf(1, 0), undefined);
  });
});

describe('flood cap', () => {
  const H = FLOOD_WINDOW_MS;
  const now = 10 * H;

  it('admits mails up to the cap within any hour', () => {
    assert.deepEqual(floodDecision([], now, 3), { admit: true, inWindow: 0 });
    assert.equal(floodDecision([now - 10, now - 5], now, 3).admit, true);
    const full = floodDecision([now - 30_000, now - 20_000, now - 10_000], now, 3);
    assert.equal(full.admit, false);
    assert.equal(full.roomAt, now - 30_000 + H, 'room once the oldest leaves the window');
  });

  it('is a sliding window: mails older than an hour do not count, at the edge included', () => {
    assert.equal(floodDecision([now - H, now - H - 1, now - 2 * H], now, 1).admit, true);
    assert.equal(floodDecision([now - H + 1], now, 1).admit, false);
  });

  it('ignores send times in the future (another host with a clock ahead)', () => {
    assert.equal(floodDecision([now + 1000, now + 2000], now, 1).admit, true);
  });

  it('knows when there is room again even over the cap', () => {
    const times = [1, 2, 3, 4].map((i) => now - i * 1000); // 4 sent, cap now lowered to 2
    const d = floodDecision(times, now, 2);
    assert.equal(d.admit, false);
    // Sent at -4 s, -3 s, -2 s, -1 s: once the three oldest have left, one remains, below the cap.
    assert.equal(d.roomAt, now - 2000 + H);
  });

  it('with cap 0 holds every alert back', () => {
    const d = floodDecision([], now, 0);
    assert.equal(d.admit, false);
    assert.equal(d.roomAt, now + H);
  });

  it('a burst of 100 alerts in a minute: 60 mailed, 40 held for the summary', () => {
    const sent: number[] = [];
    let held = 0;
    for (let i = 0; i < 100; i++) {
      const t = now + i * 600;
      if (floodDecision(sent, t, 60).admit) sent.push(t);
      else held++;
    }
    assert.equal(sent.length, 60);
    assert.equal(held, 40);
    // An hour after the first, the first slot frees.
    assert.equal(floodDecision(sent, now + H, 60).admit, true);
  });

  it('summarises held alerts oldest first, within a size limit', () => {
    const held = [{ at: '2026-01-01T10:00:02Z', subject: 'b' }, { at: '2026-01-01T10:00:01Z', subject: 'a' }, { at: '2026-01-01T10:00:03Z', subject: 'c' }];
    assert.deepEqual(summaryLines(held), ['  2026-01-01T10:00:01Z  a', '  2026-01-01T10:00:02Z  b', '  2026-01-01T10:00:03Z  c']);
    const lines = summaryLines(held, 2);
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /1 more/);
  });
});

// ---------------------------------------------------------------------------------------------
// The watch, over an in-memory store: which mails a sequence of reconciles and sweeps queues.

class MemoryStore implements AlertStore {
  readonly sets = new Map<string, Set<string>>();
  readonly blocks = new Map<string, QuotaBlock>();
  private set(scope: string): Set<string> {
    let s = this.sets.get(scope);
    if (!s) this.sets.set(scope, (s = new Set()));
    return s;
  }
  async fired(scope: string): Promise<Set<string>> {
    return new Set(this.set(scope));
  }
  async apply(scope: string, fire: readonly string[], rearm: readonly string[]): Promise<string[]> {
    const s = this.set(scope);
    for (const id of rearm) s.delete(id);
    return fire.filter((id) => !s.has(id) && Boolean(s.add(id)));
  }
  async forget(scope: string): Promise<void> {
    this.sets.delete(scope);
  }
  async block(ref: MailboxRef): Promise<QuotaBlock | undefined> {
    return this.blocks.get(`${ref.context}/${ref.mailbox}`);
  }
  async setBlock(ref: MailboxRef, b: QuotaBlock): Promise<void> {
    this.blocks.set(`${ref.context}/${ref.mailbox}`, b);
  }
  async clearBlock(ref: MailboxRef): Promise<QuotaBlock | undefined> {
    const b = this.blocks.get(`${ref.context}/${ref.mailbox}`);
    this.blocks.delete(`${ref.context}/${ref.mailbox}`);
    return b;
  }
}

/** Just enough of an imapflow client for readQuota: QUOTA, and a quota that the test sets. */
function fakeClient(quota: () => Record<string, { usage: number; limit: number }> | false): ImapFlow {
  const caps = new Map<string, boolean>([['QUOTA', true]]);
  return {
    capabilities: caps,
    getQuota: async (path: string) => {
      const q = quota();
      return q === false ? false : { path, quotaRoot: 'User quota', ...q };
    },
  } as unknown as ImapFlow;
}

const CAPS: ServerCapabilities = { uidplus: true, move: true, condstore: true, qresync: true, idle: true, notify: true, quota: true, specialUse: true };

function box(mailbox: string, user: string, maxmsg = 100): BoxInfo {
  return { ref: { context: 'default', mailbox }, owner: { fullName: `Owner ${mailbox}`, email: `${mailbox}@example.invalid` }, timezone: 'UTC', account: { user, password: 'x' }, maxmsg };
}

/** Spool counts as a reconcile reports them: `new` includes the urgent ones. */
function countsWith(inbox: number, urgent = 0): MwiCounts {
  return { new: inbox + urgent, old: 0, urgent };
}

function watchFixture(boxes: readonly BoxInfo[], overrides: Record<string, unknown> = {}) {
  const settings = settingsSchema.parse({ imap: { host: 'h' }, alerts: { quotaRetrySeconds: 60, quotaRetryMaxSeconds: 1800, ...overrides } }).alerts;
  const store = new MemoryStore();
  const sent: AlertJob[] = [];
  const retries: { ref: MailboxRef; delayMs: number; jobId: string; due: number }[] = [];
  let clock = 1_800_000_000_000;
  const directory: Directory = { boxes: new Map(boxes.map((b) => [`${b.ref.mailbox}@${b.ref.context}`, b])), problems: [] };
  const watch = new QuotaWatch({
    settings,
    state: store,
    producer: { send: async (job) => void sent.push(job) },
    retries: {
      // A delayed job: pending until its time has come (then it runs: the next afterReconcile).
      schedule: async (ref, delayMs, attempt) => {
        const jobId = `retry-${attempt}-${retries.length}`;
        retries.push({ ref, delayMs, jobId, due: clock + delayMs });
        return jobId;
      },
      isPending: async (jobId) => retries.some((r) => r.jobId === jobId && clock < r.due),
    },
    directory: () => directory,
    log: createLogger('silent'),
    now: () => clock,
  });
  return { watch, store, sent, retries, advance: (ms: number) => void (clock += ms), settings };
}

const overQuota = Object.assign(new Error('Command failed'), { responseStatus: 'NO', serverResponseCode: 'OVERQUOTA', responseText: 'Quota exceeded (mailbox for user is full)' });

describe('QuotaWatch', () => {
  const b = box('1000', 'u1000', 10);
  const outcome = (client: ImapFlow, extra: Partial<ReconcileOutcome> = {}): ReconcileOutcome => ({
    client, caps: CAPS, box: b, inboxPath: 'INBOX', counts: countsWith(0), appended: 1, waiting: 0, ...extra,
  });

  it('reads the quota after APPENDs and mails each resource that crosses, once', async () => {
    const f = watchFixture([b]);
    let q = { storage: { usage: 10 * 1024, limit: 100 * 1024 }, message: { usage: 3, limit: 5 } };
    const client = fakeClient(() => q);
    await f.watch.afterReconcile(outcome(client));
    assert.equal(f.sent.length, 0, '60% and 10%: nothing');
    q = { storage: { usage: 85 * 1024, limit: 100 * 1024 }, message: { usage: 4, limit: 5 } };
    await f.watch.afterReconcile(outcome(client));
    assert.deepEqual(f.sent.map((j) => j.kind === 'quota' && `${j.resource}:${j.threshold}`), ['MESSAGE:80', 'STORAGE:80']);
    await f.watch.afterReconcile(outcome(client));
    assert.equal(f.sent.length, 2, 'the same reading again mails nothing');
    const job = f.sent[0]!;
    assert.ok(job.kind === 'quota');
    assert.equal(job.imapUser, 'u1000');
    assert.deepEqual(job.boxes.map((x) => x.mailbox), ['1000']);
    assert.deepEqual(job.readings.map((r) => [r.resource, r.usage, r.limit, r.unit]), [['MESSAGE', 4, 5, 'messages'], ['STORAGE', 85 * 1024, 100 * 1024, 'bytes']]);
  });

  it('does not read the quota when nothing was appended (a sweep covers that)', async () => {
    const f = watchFixture([b]);
    let reads = 0;
    const client = fakeClient(() => {
      reads++;
      return { message: { usage: 5, limit: 5 } };
    });
    await f.watch.afterReconcile(outcome(client, { appended: 0 }));
    assert.equal(reads, 0);
    assert.equal(f.sent.length, 0);
  });

  it('sweep readings re-arm and fire like any other', async () => {
    const f = watchFixture([b]);
    const reading = (usage: number): QuotaReading[] => [{ root: 'User quota', resource: 'MESSAGE', usage, limit: 5, unit: 'messages' }];
    for (const u of [4, 4, 2, 4, 5, 5]) await f.watch.evaluate(b.account, reading(u));
    assert.deepEqual(f.sent.map((j) => j.kind === 'quota' && j.threshold), [80, 80, 100]);
  });

  it('lists every box of a shared account, the one reconciled first', async () => {
    const a = box('2000', 'shared');
    const c = box('2001', 'shared');
    const f = watchFixture([a, c, b]);
    const client = fakeClient(() => ({ message: { usage: 5, limit: 5 } }));
    await f.watch.afterReconcile({ ...outcome(client), box: c });
    const job = f.sent[0]!;
    assert.ok(job.kind === 'quota');
    assert.deepEqual(job.boxes.map((x) => x.mailbox), ['2001', '2000']);
    assert.equal(job.threshold, 100);
  });

  it('a refused APPEND blocks the mailbox, mails the 100% alert at once even if the reading says less, and retries with backoff', async () => {
    const f = watchFixture([b]);
    const client = fakeClient(() => ({ storage: { usage: 150 * 1024, limit: 200 * 1024 } })); // 75%
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused: overQuota }));
    assert.equal(f.sent.length, 1);
    const job = f.sent[0]!;
    assert.ok(job.kind === 'quota');
    assert.equal(job.threshold, 100);
    assert.equal(job.resource, 'STORAGE');
    assert.match(job.refusal ?? '', /OVERQUOTA.*Quota exceeded/);
    assert.deepEqual(f.retries.map((r) => r.delayMs), [60_000]);
    const block = await f.store.block(b.ref);
    assert.equal(block?.attempts, 1);

    // A new voicemail triggers a reconcile before the retry is due: refused again, no new mail,
    // no second retry chain.
    f.advance(10_000);
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused: overQuota }));
    assert.equal(f.sent.length, 1, 'one mail per crossing, not per refusal');
    assert.equal(f.retries.length, 1);

    // The retries themselves: 2 min, 4 min ... capped at 30 min.
    for (const wait of [50_000, 120_000, 240_000, 480_000, 960_000, 1_800_000]) {
      f.advance(wait);
      await f.watch.afterReconcile(outcome(client, { appended: 0, refused: overQuota }));
    }
    assert.deepEqual(f.retries.map((r) => r.delayMs / 1000), [60, 120, 240, 480, 960, 1800, 1800]);
    assert.equal(f.sent.length, 1, 'still the one mail');

    // A sweep meanwhile reads 75%: while the mailbox is blocked that re-arms nothing, so the next
    // refused retry is no new crossing.
    await f.watch.evaluate(b.account, [{ root: 'User quota', resource: 'STORAGE', usage: 150 * 1024, limit: 200 * 1024, unit: 'bytes' }]);
    f.advance(1_800_000);
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused: overQuota }));
    assert.equal(f.sent.length, 1, 'no mail per retry');

    // Room again: an APPEND goes through, the block is cleared, the reading re-arms.
    const roomy = fakeClient(() => ({ storage: { usage: 20 * 1024, limit: 200 * 1024 } }));
    await f.watch.afterReconcile(outcome(roomy, { appended: 1 }));
    assert.equal(await f.store.block(b.ref), undefined);
    assert.deepEqual([...(await f.store.fired(quotaScope('u1000', 'STORAGE')))], [], 'the reading after the block re-armed everything');
    // Full again later: a new crossing, a new mail.
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused: overQuota }));
    assert.equal(f.sent.length, 2);
  });

  it('a refusal from a server that reports no quota still alerts once, and re-arms when an APPEND goes through', async () => {
    const f = watchFixture([b]);
    const client = fakeClient(() => false);
    const refused = Object.assign(new Error('Command failed'), { responseStatus: 'NO', responseText: 'Mailbox is full' });
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused }));
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused }));
    assert.equal(f.sent.length, 1);
    const job = f.sent[0]!;
    assert.ok(job.kind === 'quota');
    assert.equal(job.resource, 'QUOTA');
    assert.deepEqual(job.readings, []);
    await f.watch.afterReconcile(outcome(client, { appended: 1 }));
    await f.watch.afterReconcile(outcome(client, { appended: 0, refused }));
    assert.equal(f.sent.length, 2);
  });

  it('a blocked-mark left without its block (a crash in between) does not silence the resource', async () => {
    const f = watchFixture([b]);
    await f.store.apply(quotaScope('u1000', 'MESSAGE'), ['pct80', 'pct95', 'pct100', 'blocked'], []);
    await f.watch.evaluate(b.account, [{ root: '', resource: 'MESSAGE', usage: 1, limit: 5, unit: 'messages' }]);
    assert.deepEqual([...(await f.store.fired(quotaScope('u1000', 'MESSAGE')))], []);
    await f.watch.evaluate(b.account, [{ root: '', resource: 'MESSAGE', usage: 4, limit: 5, unit: 'messages' }]);
    assert.equal(f.sent.length, 1);
  });

  it('keeps the block when nothing was appended because a voicemail could not be read', async () => {
    const f = watchFixture([b]);
    await f.store.setBlock(b.ref, { since: 1, attempts: 1, nextRetryAt: 2, retryJob: 'j', scope: 'quota:u1000:MESSAGE', reason: 'x' });
    await f.watch.afterReconcile(outcome(fakeClient(() => false), { appended: 0, waiting: 1 }));
    assert.equal((await f.store.block(b.ref))?.attempts, 1);
  });

  it('clears a stale block when nothing is waiting any more', async () => {
    const f = watchFixture([b]);
    await f.store.setBlock(b.ref, { since: 1, attempts: 3, nextRetryAt: 2, retryJob: 'j', scope: 'quota:u1000:STORAGE', reason: 'x' });
    await f.watch.afterReconcile(outcome(fakeClient(() => false), { appended: 0 }));
    assert.equal(await f.store.block(b.ref), undefined);
  });

  it('warns once when INBOX or Urgent nears maxmsg, and again only after it went down by the margin', async () => {
    const f = watchFixture([b]); // maxmsg 10, margin 2: fires at 8, re-arms below 7.5
    const client = fakeClient(() => false);
    for (const n of [5, 7, 8, 9, 8, 7, 8, 10]) await f.watch.afterReconcile(outcome(client, { appended: 0, counts: countsWith(n) }));
    assert.deepEqual(f.sent.map((j) => j.kind === 'maxmsg' && `${j.folder}:${j.count}`), ['INBOX:8', 'INBOX:8']);
    await f.watch.afterReconcile(outcome(client, { appended: 0, counts: countsWith(10, 9) }));
    assert.deepEqual(f.sent.map((j) => j.kind === 'maxmsg' && `${j.folder}:${j.count}`), ['INBOX:8', 'INBOX:8', 'Urgent:9']);
    assert.deepEqual([...(await f.store.fired(maxmsgScope(b.ref, 'INBOX')))], ['maxmsg']);
  });
});
