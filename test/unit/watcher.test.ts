import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchSpool } from '../../src/spool/watcher.js';
import type { SpoolWatcher } from '../../src/spool/watcher.js';
import { mailboxKey } from '../../src/spool/types.js';
import type { MailboxRef } from '../../src/spool/types.js';

interface Call {
  readonly key: string;
  readonly path: string;
  readonly at: number;
}

let spool: string;
let watcher: SpoolWatcher | undefined;
let calls: Call[];

beforeEach(async () => {
  spool = await mkdtemp(join(tmpdir(), 'vmbridge-watch-'));
  calls = [];
});
afterEach(async () => {
  watcher?.close();
  watcher = undefined;
  await rm(spool, { recursive: true, force: true });
});

function start(opts: { debounceMs?: number; retryMs?: number } = {}): SpoolWatcher {
  watcher = watchSpool(spool, (ref: MailboxRef, path: string) => calls.push({ key: mailboxKey(ref), path, at: performance.now() }), opts);
  return watcher;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; calls: ${JSON.stringify(calls.map((c) => c.key))}`);
    await sleep(5);
  }
}

function boxDir(context: string, mailbox: string): string {
  return join(spool, 'voicemail', context, mailbox);
}

async function makeBox(context: string, mailbox: string, folders = ['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends', 'tmp']): Promise<string> {
  const dir = boxDir(context, mailbox);
  for (const f of folders) await mkdir(join(dir, f), { recursive: true });
  return dir;
}

/** As app_voicemail leaves a message: everything written in tmp/, renamed in with the .txt last. */
async function leaveMessage(dir: string, folder: string, n: number): Promise<void> {
  const tmp = join(dir, 'tmp', `rec${n}`);
  for (const ext of ['gsm', 'wav', 'WAV']) await writeFile(`${tmp}.${ext}`, 'audio');
  await writeFile(tmp, `[message]\norigtime=${1_700_000_000 + n}\nmsg_id=${1_700_000_000 + n}-0000000${n % 10}\n`);
  const base = join(dir, folder, `msg${String(n).padStart(4, '0')}`);
  for (const ext of ['gsm', 'wav', 'WAV']) await rename(`${tmp}.${ext}`, `${base}.${ext}`);
  await rename(tmp, `${base}.txt`);
}

/** inotify watches this process holds (Linux only). */
function inotifyWatches(): number | undefined {
  if (!existsSync('/proc/self/fdinfo')) return undefined;
  let count = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      count += (readFileSync(join('/proc/self/fdinfo', fd), 'utf8').match(/^inotify wd:/gm) ?? []).length;
    } catch {
      // fd closed meanwhile
    }
  }
  return count;
}

describe('watchSpool', () => {
  it('reports each of 20 mailboxes when 100 messages arrive in them', async (t: TestContext) => {
    const boxes = Array.from({ length: 20 }, (_, i) => ({ context: i % 2 === 0 ? 'default' : 'sales', mailbox: String(1000 + i) }));
    const dirs = await Promise.all(boxes.map((b) => makeBox(b.context, b.mailbox)));
    await start().ready;
    const t0 = performance.now();
    // Five messages per mailbox, mailboxes interleaved as concurrent callers would.
    await Promise.all(dirs.map(async (dir) => {
      for (let n = 0; n < 5; n++) await leaveMessage(dir, n === 4 ? 'Urgent' : 'INBOX', n);
    }));
    const written = performance.now() - t0;
    const want = new Set(boxes.map((b) => `${b.mailbox}@${b.context}`));
    await waitFor('all 20 mailboxes', () => want.size === new Set(calls.map((c) => c.key)).size);
    await sleep(100);
    const reported = new Set(calls.map((c) => c.key));
    assert.deepEqual([...reported].sort(), [...want].sort());
    assert.ok(calls.length <= 100, `at most one call per message, got ${calls.length}`);
    const last = Math.max(...calls.map((c) => c.at)) - t0;
    t.diagnostic(`100 messages written in ${written.toFixed(0)} ms; ${calls.length} calls for 20 mailboxes; last call ${last.toFixed(0)} ms after the first write`);
  });

  it("gives exactly one call for one message's four files (default 15 ms debounce)", async () => {
    const dir = await makeBox('default', '1000');
    await start().ready;
    await leaveMessage(dir, 'INBOX', 0);
    await waitFor('the call', () => calls.length > 0);
    await sleep(150);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.key, '1000@default');
    assert.equal(calls[0]?.path, join(dir, 'INBOX', 'msg0000.txt'));
  });

  it('gives one call for a move between folders and one for a delete', async () => {
    const dir = await makeBox('default', '1000');
    await leaveMessage(dir, 'INBOX', 0);
    await start({ debounceMs: 30 }).ready;
    for (const ext of ['txt', 'gsm', 'wav', 'WAV']) await rename(join(dir, 'INBOX', `msg0000.${ext}`), join(dir, 'Old', `msg0000.${ext}`));
    await waitFor('the move', () => calls.length > 0);
    await sleep(150);
    assert.equal(calls.length, 1);
    for (const ext of ['WAV', 'txt', 'gsm', 'wav']) await unlink(join(dir, 'Old', `msg0000.${ext}`));
    await waitFor('the delete', () => calls.length > 1);
    await sleep(150);
    assert.equal(calls.length, 2);
    assert.equal(calls[1]?.key, '1000@default');
  });

  it('ignores audio, tmp/, greetings, unsynced folders and unsafe names', async () => {
    const dir = await makeBox('default', '1000', ['INBOX', 'tmp', 'Cust1', 'Deleted']);
    await mkdir(join(spool, 'voicemail', 'default', 'bad name', 'INBOX'), { recursive: true });
    await start({ debounceMs: 5 }).ready;
    await writeFile(join(dir, 'INBOX', 'msg0000.wav'), 'audio only');
    await writeFile(join(dir, 'INBOX', '.lock'), '');
    await writeFile(join(dir, 'INBOX', 'msg00001.txt'), 'not a message name');
    await writeFile(join(dir, 'tmp', 'msg0000.txt'), 'x');
    await writeFile(join(dir, 'Cust1', 'msg0000.txt'), 'x');
    await writeFile(join(dir, 'Deleted', 'msg0000.txt'), 'x');
    await writeFile(join(dir, 'unavail.wav'), 'greeting');
    await writeFile(join(spool, 'voicemail', 'default', 'bad name', 'INBOX', 'msg0000.txt'), 'x');
    await sleep(200);
    assert.deepEqual(calls, []);
  });

  it('picks up a mailbox created after the start, with its first message', async () => {
    await mkdir(join(spool, 'voicemail', 'default'), { recursive: true });
    await start({ debounceMs: 5 }).ready;
    // As Asterisk does for a first message: the folders at call start, the message at hang-up.
    const dir = await makeBox('default', '2000', ['INBOX', 'tmp']);
    await sleep(50);
    await leaveMessage(dir, 'INBOX', 0);
    await waitFor('the new mailbox', () => calls.some((c) => c.key === '2000@default'));
    // A whole mailbox moved in at once (a restore) is reported too: its folder already holds messages.
    const staged = join(spool, 'staged');
    await mkdir(join(staged, 'Old'), { recursive: true });
    await writeFile(join(staged, 'Old', 'msg0000.txt'), 'x');
    await rename(staged, boxDir('default', '3000'));
    await waitFor('the restored mailbox', () => calls.some((c) => c.key === '3000@default'));
  });

  it('creates nothing when the voicemail dir is missing, and watches it once it appears', async () => {
    await start({ debounceMs: 5, retryMs: 50 }).ready;
    await sleep(120);
    assert.equal(existsSync(join(spool, 'voicemail')), false);
    // It appears with a message already in it: that is reported.
    const dir = await makeBox('default', '1000', ['INBOX', 'tmp']);
    await leaveMessage(dir, 'INBOX', 0);
    await waitFor('the existing message', () => calls.some((c) => c.key === '1000@default'));
    // And later messages are seen as they come.
    const before = calls.length;
    await leaveMessage(dir, 'INBOX', 1);
    await waitFor('the next message', () => calls.length > before);
  });

  it('survives the voicemail dir being removed and made again', async () => {
    const dir = await makeBox('default', '1000', ['INBOX', 'tmp']);
    await start({ debounceMs: 5, retryMs: 50 }).ready;
    await rm(join(spool, 'voicemail'), { recursive: true });
    await sleep(100);
    await makeBox('default', '1000', ['INBOX', 'tmp']);
    await sleep(150);
    const before = calls.length;
    await leaveMessage(dir, 'INBOX', 0);
    await waitFor('a message after the re-creation', () => calls.length > before);
  });

  it('calls nothing after close()', async () => {
    const dir = await makeBox('default', '1000', ['INBOX', 'tmp']);
    const w = start({ debounceMs: 50 });
    await w.ready;
    await leaveMessage(dir, 'INBOX', 0);
    w.close();
    await leaveMessage(dir, 'INBOX', 1);
    await sleep(150);
    assert.deepEqual(calls, []);
  });

  it('watches directories, not files: one inotify watch per relevant directory', async (t: TestContext) => {
    const baseline = inotifyWatches();
    if (baseline === undefined) {
      t.skip('no /proc/self/fdinfo on this system');
      return;
    }
    const all = ['INBOX', 'Old', 'Work', 'Family', 'Friends', 'Cust1', 'Cust2', 'Cust3', 'Cust4', 'Cust5', 'Deleted', 'Urgent', 'tmp'];
    for (let i = 0; i < 20; i++) {
      const dir = await makeBox('default', String(1000 + i), all);
      for (let n = 0; n < 5; n++) await leaveMessage(dir, 'Old', n);
    }
    await start().ready;
    // The root, the context, 20 mailboxes, and their 6 synced folders each; none for the 400 files.
    const expected = 1 + 1 + 20 + 20 * 6;
    assert.equal((inotifyWatches() ?? 0) - baseline, expected);
    t.diagnostic(`20 mailboxes, 400 message files: ${expected} inotify watches`);
  });
});
