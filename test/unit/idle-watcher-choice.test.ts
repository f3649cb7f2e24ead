/**
 * IdleWatcher applies the choice it is given: it tells it which accounts are watched now, and
 * watches what it returns, within maxAccounts and among the accounts it was given. No server: the
 * watches wait for a connection slot that a one-connection user never has for IDLE.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { settingsSchema } from '../../src/config/schema.js';
import { ConnectionLimiter } from '../../src/imap/connection-limiter.js';
import { IdleWatcher, type IdleChoice } from '../../src/imap/idle-watcher.js';
import { createLogger } from '../../src/log.js';

describe('IdleWatcher and the choice by need', () => {
  it('hands the choice the watched accounts and the bound, and applies what it returns', async () => {
    const server = settingsSchema.parse({ imap: { host: '127.0.0.1' } }).imap;
    const watcher = new IdleWatcher({
      server,
      maxAccounts: 2,
      log: createLogger('silent'),
      onChange: () => undefined,
      limiter: new ConnectionLimiter({ perServer: 10, perServerIdle: 10, perUser: 1 }),
    });
    const asked: { keys: string[]; watched: string[]; slots: number }[] = [];
    const returning = (picked: readonly string[]): IdleChoice => (keys, watched, slots) => {
      asked.push({ keys: [...keys].sort(), watched: [...watched].sort(), slots });
      return picked;
    };
    const accounts = [{ user: 'a' }, { user: 'b' }, { user: 'c' }];
    try {
      watcher.update(accounts, returning(['c', 'b']));
      assert.deepEqual([...watcher.watching].sort(), ['b', 'c']);
      // More than the bound, and one account it was not given: neither is watched.
      watcher.update(accounts, returning(['x', 'a', 'b', 'c']));
      assert.deepEqual([...watcher.watching].sort(), ['a', 'b']);
      assert.deepEqual(asked, [
        { keys: ['a', 'b', 'c'], watched: [], slots: 2 },
        { keys: ['a', 'b', 'c'], watched: ['b', 'c'], slots: 2 },
      ]);
    } finally {
      await watcher.close();
    }
  });
});
