/**
 * The background lane's pace (src/queue/background-pace.ts): low while an event's reconcile runs
 * or ran within calmMs, high once events have been quiet that long; never below the low number.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackgroundPace } from '../../src/queue/background-pace.js';
import { backgroundCalmConcurrency, backgroundConcurrency, CALM_MS } from '../../workers/reconcile.js';

describe('background pace', () => {
  it('runs at the calm number until an event starts, drops at once, and rises calmMs after the last event ended', () => {
    let now = 1_000;
    const pace = new BackgroundPace({ busy: 2, calm: 8, calmMs: 5_000 }, () => now);
    assert.equal(pace.concurrency(), 8, 'no event yet');
    assert.equal(pace.calmInMs(), 0);
    pace.eventStarted();
    assert.equal(pace.concurrency(), 2, 'an event is being reconciled');
    assert.equal(pace.calmInMs(), undefined, 'its end starts the window');
    now += 60_000;
    assert.equal(pace.concurrency(), 2, 'however long it runs');
    pace.eventStarted();
    pace.eventEnded();
    now += 10_000;
    assert.equal(pace.concurrency(), 2, 'one of two events still runs');
    pace.eventEnded();
    assert.equal(pace.calmInMs(), 5_000);
    now += 4_999;
    assert.equal(pace.concurrency(), 2, 'within calmMs of the last end');
    assert.equal(pace.calmInMs(), 1, 'when to look again');
    now += 2;
    assert.equal(pace.concurrency(), 8, 'calm again');
    assert.equal(pace.calmInMs(), 0);
    pace.eventEnded(); // an unmatched end (a job that had started before) does not go below zero
    now += 5_001;
    pace.eventStarted();
    assert.equal(pace.concurrency(), 2);
  });

  it('never goes below the busy number, and follows the settings', () => {
    const pace = new BackgroundPace({ busy: 6, calm: 3, calmMs: 1 }, () => 0);
    assert.equal(pace.concurrency(), 6);
    assert.equal(backgroundConcurrency({ concurrency: 4 }), 2);
    assert.equal(backgroundCalmConcurrency({ concurrency: 4 }), 8);
    assert.equal(backgroundCalmConcurrency({ concurrency: 4, backgroundCalmConcurrency: 16 }), 16);
    assert.equal(backgroundCalmConcurrency({ concurrency: 4, backgroundConcurrency: 12 }), 12, 'never below backgroundConcurrency');
    assert.equal(backgroundCalmConcurrency({ concurrency: 4 }, 50), 8);
    assert.equal(backgroundCalmConcurrency({ concurrency: 4 }, 10), 6, 'unset, it leaves the event lane its IMAP connections');
    assert.equal(backgroundCalmConcurrency({ concurrency: 4 }, 4), 2, 'but never below backgroundConcurrency');
    assert.equal(backgroundCalmConcurrency({ concurrency: 4, backgroundCalmConcurrency: 16 }, 10), 16, 'a value set is taken as it is');
    assert.ok(CALM_MS > 0);
  });
});
