import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { StatusLine } from '../../src/cli/progress-line.js';
import { createLogger } from '../../src/log.js';
import { ProgressMeter, defaultPolicy, formatDuration, formatProgress, progressFields } from '../../src/progress.js';
import { StartupProgress, appendedBy } from '../../src/progress-log.js';
import type { Op } from '../../src/sync/plan.js';
import type { ReconcileResult } from '../../src/sync/reconcile.js';

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function memoryLog(): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: createLogger('info', { destination: stream }), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const append = (id: string): Op => ({ kind: 'append', id, folder: 'INBOX', reason: 'new' }) as unknown as Op;
const move = (id: string): Op => ({ kind: 'move-voicemail', id, from: 'INBOX', to: 'Old', reason: 'read' }) as unknown as Op;
/** Only the fields appendedBy reads; the rest of a result does not matter to it. */
function result(ops: Op[], applied: number, skippedIds: string[] = []): ReconcileResult {
  return { plan: { ops, held: [] }, applied, skipped: ops.filter((o) => skippedIds.includes(o.id)).map((op) => ({ op, problem: 'x' })) } as unknown as ReconcileResult;
}

describe('ProgressMeter', () => {
  it('reckons rate and time left from the clock it is given', () => {
    const c = clock();
    const m = new ProgressMeter(10, c.now);
    assert.equal(m.snapshot().etaSeconds, undefined, 'nothing done: no time left to tell');
    assert.equal(formatProgress(m.snapshot()), '0/10 mailboxes, 0 appended (0.0/s), ? left');
    c.advance(4_000);
    m.mailboxDone(20);
    m.mailboxDone(0);
    const s = m.snapshot();
    assert.equal(s.done, 2);
    assert.equal(s.appended, 20);
    assert.equal(s.rate, 5, '20 emails in 4 s');
    assert.equal(s.mailboxRate, 0.5);
    assert.equal(s.etaSeconds, 16, '8 mailboxes left at 0.5 a second');
    assert.equal(formatProgress(s), '2/10 mailboxes, 20 appended (5.0/s), 16s left');
    assert.deepEqual(progressFields(s), { done: 2, total: 10, appended: 20, failed: 0, rate: 5, mailboxRate: 0.5, etaSeconds: 16, elapsedSeconds: 4 });
  });

  it('counts failed mailboxes as done, and says so; at the end no time is left', () => {
    const c = clock();
    const m = new ProgressMeter(2, c.now);
    c.advance(65_000);
    m.mailboxDone(3);
    m.mailboxDone(0, true);
    const s = m.snapshot();
    assert.equal(s.etaSeconds, 0);
    assert.equal(s.failed, 1);
    assert.equal(formatProgress(s), '2/2 mailboxes, 3 appended (0.0/s), 1 failed, done in 1m05s');
  });

  it('a line is due every tenth of the mailboxes or every 10 s, the last always, never twice for the same count', () => {
    assert.deepEqual(defaultPolicy(3), { everyMs: 10_000, everyMailboxes: 1 });
    assert.deepEqual(defaultPolicy(1000), { everyMs: 10_000, everyMailboxes: 100 });
    const c = clock();
    const m = new ProgressMeter(100, c.now);
    const dueAt: number[] = [];
    for (let i = 1; i <= 100; i++) {
      c.advance(100);
      m.mailboxDone(1);
      if (i === 55) c.advance(10_000);
      if (m.due()) dueAt.push(i);
    }
    assert.deepEqual(dueAt, [10, 20, 30, 40, 50, 55, 65, 75, 85, 95, 100]);
    assert.equal(m.due(), false, 'nothing new since the last line');
  });

  it('a pass over no mailbox is done at once', () => {
    const m = new ProgressMeter(0, clock().now);
    assert.equal(m.finished, true);
    assert.equal(m.snapshot().etaSeconds, 0);
  });
});

describe('formatDuration', () => {
  it('seconds, minutes and hours; unknown as ?', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(59.4), '59s');
    assert.equal(formatDuration(185), '3m05s');
    assert.equal(formatDuration(3_720), '1h02m');
    assert.equal(formatDuration(undefined), '?');
    assert.equal(formatDuration(Infinity), '?');
  });
});

describe('appendedBy', () => {
  it('the plan\'s appends less the skipped ones; none on a dry run', () => {
    assert.equal(appendedBy(result([append('a'), append('b'), move('c')], 3)), 2);
    assert.equal(appendedBy(result([append('a'), append('b'), move('c')], 2, ['b'])), 1);
    assert.equal(appendedBy(result([append('a'), append('b')], 0)), 0, 'dry run: nothing applied');
  });
});

describe('StartupProgress', () => {
  it('counts each start-up mailbox once, at its first reconcile, and logs done/total to the end', () => {
    const c = clock();
    const { log, lines } = memoryLog();
    const refs = ['1', '2', '3'].map((mailbox) => ({ context: 'default', mailbox }));
    const p = new StartupProgress(refs, log, c.now);
    c.advance(2_000);
    p.reconciled(refs[0]!, result([append('a'), append('b')], 2));
    p.reconciled(refs[0]!, result([append('c')], 1));
    p.reconciled({ context: 'default', mailbox: '9' }, result([append('d')], 1));
    p.gaveUp(refs[1]!);
    p.reconciled(refs[2]!, result([], 0));
    p.reconciled(refs[2]!, result([append('e')], 1));
    const got = lines().map((l) => ({ msg: l.msg, phase: l.phase, done: l.done, total: l.total, appended: l.appended, failed: l.failed }));
    assert.deepEqual(got, [
      { msg: 'progress', phase: 'start', done: 1, total: 3, appended: 2, failed: 0 },
      { msg: 'progress', phase: 'start', done: 2, total: 3, appended: 2, failed: 1 },
      { msg: 'progress', phase: 'start', done: 3, total: 3, appended: 2, failed: 1 },
    ]);
    assert.equal(lines().at(-1)?.etaSeconds, 0);
  });
});

describe('StartupProgress after a reload', () => {
  it('a mailbox taken out of voicemail.conf counts as done, so the pass ends', () => {
    const { log, lines } = memoryLog();
    const refs = ['1', '2'].map((mailbox) => ({ context: 'default', mailbox }));
    const p = new StartupProgress(refs, log, clock().now);
    p.keepOnly([refs[0]!, { context: 'default', mailbox: '7' }]);
    p.reconciled(refs[0]!, result([append('a')], 1));
    assert.deepEqual(lines().map((l) => [l.done, l.total, l.appended]), [[1, 2, 0], [2, 2, 1]]);
  });
});

describe('StatusLine', () => {
  it('rewrites one line in place, prints output above it, cuts it to the width', () => {
    let out = '';
    const s = new StatusLine({ write: (t: string) => (out += t), columns: 20 });
    s.print('before\n');
    s.show('1/3 mailboxes');
    s.print('[1/3] a: in step\n');
    s.show('2/3 mailboxes, a long tail that does not fit');
    s.end();
    assert.equal(out, 'before\n\r1/3 mailboxes\x1b[K\r\x1b[K[1/3] a: in step\n\r1/3 mailboxes\x1b[K\r2/3 mailboxes, a lo\x1b[K\n');
  });
});
