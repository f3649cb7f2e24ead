import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AccountNeedTracker, chooseIdle, clearlyAhead, idleOrder } from '../../src/imap/idle-choice.js';

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

describe('IDLE choice with a margin', () => {
  const MIN = 60_000;
  const keepMs = 5 * MIN;
  const choose = (accounts: readonly string[], watched: Iterable<string>, need: AccountNeedTracker, slots = 2): string[] =>
    chooseIdle(accounts, new Set(watched), need, { slots, keepMs });

  it('busy accounts with unread voicemail keep their connections while the newest activity goes round', () => {
    const accounts = ['a', 'b', 'c', 'd'];
    const need = new AccountNeedTracker();
    for (const a of accounts) {
      need.counts(a, `${a}@default`, true);
      need.activity(a, 0);
    }
    let watched = choose(accounts, [], need);
    const first = [...watched];
    let moves = 0;
    // One activity a minute, each on the account that was quiet longest, and a choice after each:
    // the order changes every time, but no account is ever newer by more than the margin.
    for (let minute = 1; minute <= 12; minute++) {
      need.activity(accounts[minute % accounts.length]!, minute * MIN);
      const next = choose(accounts, watched, need);
      moves += next.filter((a) => !watched.includes(a)).length;
      watched = next;
    }
    assert.equal(moves, 0);
    assert.deepEqual(watched, first);
  });

  it('an account that gets unread voicemail takes a connection at the first choice, from the worst watched one', () => {
    const need = new AccountNeedTracker();
    need.activity('a', 10 * MIN);
    need.activity('b', 9 * MIN);
    need.activity('c', 1 * MIN);
    assert.deepEqual(choose(['a', 'b', 'c'], ['a', 'b'], need), ['a', 'b'], 'nothing unread and c long quiet: nothing moves');
    need.counts('c', 'c@default', true);
    assert.deepEqual(choose(['a', 'b', 'c'], ['a', 'b'], need), ['c', 'a']);
  });

  it('an account whose unread voicemail was heard gives way to one that has some, however recent its activity', () => {
    const need = new AccountNeedTracker();
    for (const a of ['a', 'b', 'c']) need.counts(a, `${a}@default`, true);
    need.activity('a', 10 * MIN);
    need.activity('b', 9 * MIN);
    need.activity('c', 1 * MIN);
    assert.deepEqual(choose(['a', 'b', 'c'], ['a', 'b'], need), ['a', 'b']);
    need.counts('a', 'a@default', false);
    need.activity('a', 11 * MIN);
    assert.deepEqual(choose(['a', 'b', 'c'], ['a', 'b'], need), ['b', 'c']);
  });

  it('in the same tier, only activity newer by more than the margin takes a connection', () => {
    const need = new AccountNeedTracker();
    need.activity('a', 10 * MIN);
    need.activity('b', 10 * MIN + keepMs);
    assert.deepEqual(choose(['a', 'b'], ['a'], need, 1), ['a'], 'newer by the margin exactly');
    need.activity('b', 10 * MIN + keepMs + 1);
    assert.deepEqual(choose(['a', 'b'], ['a'], need, 1), ['b']);
  });

  it('an account never active keeps nothing against one that was; by name alone nothing moves', () => {
    const need = new AccountNeedTracker();
    assert.deepEqual(choose(['a', 'z'], ['z'], need, 1), ['z'], 'a comes first by name, but that is no reason to move');
    need.activity('a', 1);
    assert.deepEqual(choose(['a', 'z'], ['z'], need, 1), ['a']);
  });

  it('free connections go by order; with fewer connections or accounts gone, the best-ranked watched ones stay', () => {
    const need = new AccountNeedTracker();
    need.activity('b', 3 * MIN);
    need.activity('c', 2 * MIN);
    need.activity('d', 1 * MIN);
    assert.deepEqual(choose(['a', 'b', 'c', 'd'], [], need), ['b', 'c'], 'at start, by need');
    assert.deepEqual(choose(['a', 'b', 'c', 'd'], ['d'], need, 3), ['b', 'c', 'd'], 'd stays, the free ones by order');
    assert.deepEqual(choose(['a', 'b', 'c', 'd'], ['a', 'c', 'd'], need, 2), ['c', 'd'], 'one connection fewer: a goes');
    assert.deepEqual(choose(['a', 'b', 'd'], ['c', 'd'], need, 2), ['b', 'd'], 'c is gone: its connection goes by order');
    assert.deepEqual(choose(['a', 'b'], ['a', 'b'], need, 0), []);
  });

  it('any facts: within the bound, stable when asked again, and no unwatched account clearly ahead of a watched one', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const fact = fc.record({ unread: fc.boolean(), active: fc.option(fc.integer({ min: 0, max: 30 * MIN }), { nil: undefined }) });
    fc.assert(
      fc.property(
        fc.subarray(names),
        fc.subarray(names),
        fc.array(fact, { minLength: names.length, maxLength: names.length }),
        fc.integer({ min: 0, max: names.length + 1 }),
        fc.integer({ min: 0, max: 10 * MIN }),
        (accounts, watchedNow, facts, slots, margin) => {
          const need = new AccountNeedTracker();
          names.forEach((n, i) => {
            const f = facts[i]!;
            need.counts(n, `${n}@default`, f.unread);
            if (f.active !== undefined) need.activity(n, f.active);
          });
          const opts = { slots, keepMs: margin };
          const chosen = chooseIdle(accounts, new Set(watchedNow), need, opts);
          assert.equal(chosen.length, Math.min(slots, accounts.length));
          assert.ok(chosen.every((a) => accounts.includes(a)));
          assert.deepEqual(chosen, idleOrder(chosen, need), 'best first');
          assert.deepEqual(chooseIdle(accounts, new Set(chosen), need, opts), chosen);
          for (const out of accounts.filter((a) => !chosen.includes(a))) {
            for (const kept of chosen) assert.ok(!clearlyAhead(out, kept, need, margin), `${out} is clearly ahead of ${kept}`);
          }
          if (watchedNow.length === 0) assert.deepEqual(chosen, idleOrder(accounts, need).slice(0, slots));
        },
      ),
    );
  });
});
