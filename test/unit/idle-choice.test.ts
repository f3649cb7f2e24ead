import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccountNeedTracker, idleOrder } from '../../src/imap/idle-choice.js';

describe('IDLE choice by need', () => {
  it('unread voicemail first, then the most recently active, then by name', () => {
    const need = new AccountNeedTracker();
    need.activity('c', 1000);
    need.activity('d', 2000);
    need.counts('e', '1@default', true);
    need.activity('e', 10);
    assert.deepEqual(idleOrder(['a', 'b', 'c', 'd', 'e'], need), ['e', 'd', 'c', 'a', 'b']);
  });

  it('an account is unread while any of its mailboxes is; forgotten accounts lose their facts', () => {
    const need = new AccountNeedTracker();
    need.counts('shared', '1@default', true);
    need.counts('shared', '2@default', true);
    need.counts('shared', '1@default', false);
    assert.equal(need.unread('shared'), true);
    need.counts('shared', '2@default', false);
    assert.equal(need.unread('shared'), false);
    need.counts('x', '3@default', true);
    need.activity('x', 5);
    need.keepOnly(new Set(['shared']));
    assert.equal(need.unread('x'), false);
    assert.equal(need.lastActive('x'), undefined);
  });
});
