/**
 * The service's notify socket and the client against it, over real Unix sockets in a temporary
 * folder: answers, refusals, the socket file's mode, stale sockets and what is never removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendNotify } from '../../src/notify/client.js';
import { NotifySocketError, startNotifyServer } from '../../src/notify/server.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { memoryLogger } from '../support/memory-log.js';

const known: MailboxRef = { context: 'default', mailbox: '1000' };

/** One raw exchange: what the server answers to `text`. */
function exchange(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = createConnection({ path }, () => c.write(text));
    c.setEncoding('utf8');
    c.on('data', (d: string) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

/** A socket file no one listens on, as a killed service leaves it. */
function staleSocket(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

describe('notify server', () => {
  let dir: string;
  const asked: MailboxRef[] = [];
  const { log, lines } = memoryLogger();
  const onNotify = async (ref: MailboxRef): Promise<'queued' | 'unknown'> => {
    asked.push(ref);
    return ref.mailbox === known.mailbox && ref.context === known.context ? 'queued' : 'unknown';
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-notify-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a known mailbox "queued", an unknown one "unknown", and passes each on once', async () => {
    const path = join(dir, 'a.sock');
    const server = await startNotifyServer({ path, onNotify, log });
    try {
      asked.length = 0;
      assert.deepEqual(await sendNotify(path, known, 2_000), { kind: 'queued' });
      assert.deepEqual(await sendNotify(path, { context: 'default', mailbox: '1999' }, 2_000), { kind: 'unknown' });
      assert.deepEqual(asked, [known, { context: 'default', mailbox: '1999' }]);
      assert.ok(lines.every((l) => !l.includes('"level":40')), 'nothing worth a warning');
    } finally {
      await server.close();
    }
  });

  it('refuses unsafe names and malformed or over-long lines without passing them on', async () => {
    const path = join(dir, 'b.sock');
    const server = await startNotifyServer({ path, onNotify, log });
    try {
      asked.length = 0;
      assert.equal(await exchange(path, 'notify default ..\n'), 'error unsafe mailbox name\n');
      assert.equal(await exchange(path, 'notify ../etc 1000\n'), 'error unsafe context name\n');
      assert.equal(await exchange(path, 'notify default 1000 1 0 0\n'), 'error expected "notify <context> <mailbox> [<server>]"\n');
      assert.equal(await exchange(path, 'GET / HTTP/1.0\r\n\r\n'), 'error expected "notify <context> <mailbox> [<server>]"\n');
      assert.match(await exchange(path, 'x'.repeat(300)), /^error line longer than 256 bytes\n$/);
      assert.deepEqual(asked, []);
      // Only the first line of a connection counts.
      assert.equal(await exchange(path, 'notify default 1000\nnotify default 1001\n'), 'ok queued\n');
      assert.deepEqual(asked, [known]);
    } finally {
      await server.close();
    }
  });

  it('answers "error" when the reconcile cannot be queued, and logs it', async () => {
    const path = join(dir, 'c.sock');
    const { log: l, lines: got } = memoryLogger();
    const server = await startNotifyServer({ path, log: l, onNotify: async () => { throw new Error('redis down'); } });
    try {
      const o = await sendNotify(path, known, 2_000);
      assert.equal(o.kind, 'refused');
      assert.ok(got.some((x) => x.includes('redis down') && x.includes('1000@default')), got.join('\n'));
    } finally {
      await server.close();
    }
  });

  it('makes the socket group read-write and nothing for others, and removes it on close', async () => {
    const path = join(dir, 'd.sock');
    const server = await startNotifyServer({ path, onNotify, log });
    const st = await lstat(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    await server.close();
    await assert.rejects(lstat(path), { code: 'ENOENT' });
  });

  it('takes over a stale socket a killed service left', async () => {
    const path = join(dir, 'e.sock');
    await staleSocket(path);
    assert.ok((await lstat(path)).isSocket());
    assert.deepEqual(await sendNotify(path, known, 2_000), { kind: 'unreachable', code: 'ECONNREFUSED' });
    const server = await startNotifyServer({ path, onNotify, log });
    try {
      assert.deepEqual(await sendNotify(path, known, 2_000), { kind: 'queued' });
    } finally {
      await server.close();
    }
  });

  it('does not take the socket of a service that is listening', async () => {
    const path = join(dir, 'f.sock');
    const first = await startNotifyServer({ path, onNotify, log });
    try {
      await assert.rejects(startNotifyServer({ path, onNotify, log }), (err: unknown) => err instanceof NotifySocketError && /already listens/.test(err.message) && err.message.includes('notify.socket'));
      assert.deepEqual(await sendNotify(path, known, 2_000), { kind: 'queued' }, 'the first still answers');
    } finally {
      await first.close();
    }
  });

  it('never removes or follows a symbolic link, a file or a folder at the path', async () => {
    const target = join(dir, 'precious');
    await writeFile(target, 'keep me');
    const link = join(dir, 'g.sock');
    await symlink(target, link);
    await assert.rejects(startNotifyServer({ path: link, onNotify, log }), (err: unknown) => err instanceof NotifySocketError && /symbolic link/.test(err.message));
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.equal(await readFile(target, 'utf8'), 'keep me');
    // A link to where a socket would be created: bind must not create it through the link.
    const dangling = join(dir, 'h.sock');
    await symlink(join(dir, 'made-through-link.sock'), dangling);
    await assert.rejects(startNotifyServer({ path: dangling, onNotify, log }), /symbolic link/);
    await assert.rejects(lstat(join(dir, 'made-through-link.sock')), { code: 'ENOENT' });
    await assert.rejects(startNotifyServer({ path: target, onNotify, log }), /regular file/);
    assert.equal(await readFile(target, 'utf8'), 'keep me');
    await assert.rejects(startNotifyServer({ path: dir, onNotify, log }), /directory/);
    await assert.rejects(startNotifyServer({ path: join(dir, 'missing', 'x.sock'), onNotify, log }), /missing does not exist.*RuntimeDirectory=vmbridge/);
  });
});

describe('notify client', () => {
  it('gives up on a peer that does not answer, by its deadline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmb-notify-'));
    const path = join(dir, 'silent.sock');
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(path, () => r()));
    try {
      assert.deepEqual(await sendNotify(path, known, 150), { kind: 'timeout', ms: 150 });
    } finally {
      silent.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('does not take an answer from a program that is not vmbridge', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmb-notify-'));
    const path = join(dir, 'other.sock');
    const other = createServer((s) => s.end('+PONG\r\n'));
    await new Promise<void>((r) => other.listen(path, () => r()));
    try {
      assert.equal((await sendNotify(path, known, 2_000)).kind, 'unreachable');
    } finally {
      other.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('says ENOENT when there is no socket', async () => {
    assert.deepEqual(await sendNotify('/nonexistent-dir/notify.sock', known, 2_000), { kind: 'unreachable', code: 'ENOENT' });
  });
});
