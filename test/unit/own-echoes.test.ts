import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isOwnEcho, noteOwnCount } from '../../src/imap/own-echoes.js';

describe('own APPEND echoes', () => {
  it('an EXISTS with a count vmbridge noted is its own, for that account and folder only, for 10 s', () => {
    noteOwnCount('alice', 'INBOX', 7, 1_000);
    noteOwnCount('alice', 'INBOX', 8, 1_100);
    assert.equal(isOwnEcho('alice', 'INBOX', 7, 1_200), true, 'an IDLE session may report each APPEND');
    assert.equal(isOwnEcho('alice', 'INBOX', 8, 1_200), true, 'or only the last');
    assert.equal(isOwnEcho('alice', 'INBOX', 9, 1_200), false, 'a message vmbridge did not write');
    assert.equal(isOwnEcho('bob', 'INBOX', 8, 1_200), false, 'another account');
    assert.equal(isOwnEcho('alice', 'Work', 8, 1_200), false, 'another folder');
    assert.equal(isOwnEcho('alice', 'INBOX', 8, 11_101), false, 'too old');
  });

  it('keeps a bounded number of counts', () => {
    for (let c = 0; c < 200; c++) noteOwnCount('carol', 'INBOX', c, 5_000);
    assert.equal(isOwnEcho('carol', 'INBOX', 199, 5_000), true);
    assert.equal(isOwnEcho('carol', 'INBOX', 0, 5_000), false, 'the oldest gave way');
  });
});
