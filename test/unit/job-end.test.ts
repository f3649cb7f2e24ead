import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError } from 'bullmq';
import { failedForGood } from '../../src/queue/job-end.js';

describe('failedForGood', () => {
  it('is false while attempts are left', () => {
    assert.equal(failedForGood({ attemptsMade: 1, opts: { attempts: 12 } }, new Error('imap down')), false);
    assert.equal(failedForGood({ attemptsMade: 11, opts: { attempts: 12 } }, new Error('imap down')), false);
  });
  it('is true once the last attempt failed', () => {
    assert.equal(failedForGood({ attemptsMade: 12, opts: { attempts: 12 } }, new Error('imap down')), true);
    assert.equal(failedForGood({ attemptsMade: 1, opts: {} }, new Error('imap down')), true);
  });
  it('is true for an unrecoverable error (a safety stop, a job stalled too often) whatever attempts are left', () => {
    assert.equal(failedForGood({ attemptsMade: 1, opts: { attempts: 12 } }, new UnrecoverableError('job stalled more than allowable limit')), true);
  });
});
