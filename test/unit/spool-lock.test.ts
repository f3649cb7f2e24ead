/**
 * Asterisk's folder lock, both lockmodes, against other real processes holding it the way Asterisk
 * does: a hard-linked, empty `.lock`, or flock(2) on `<folder>/lock`.
 */
import { exited, firstLine } from '../support/child.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ASTERISK_LOCK_TIMEOUT_MS,
  clearOwnStaleLocks,
  DEFAULT_LOCK_TIMEOUT_MS,
  FlockUnavailableError,
  LockError,
  lockFolder,
  lockMarker,
  lockStats,
  LockTimeoutError,
  parseLockMarker,
  resetLockStats,
  withFolderLock,
} from '../../src/spool/lock.js';

const LOCK_MODULE = pathToFileURL(new URL('../../src/spool/lock.ts', import.meta.url).pathname).href;
const HAVE_FLOCK = spawnSync('flock', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux') ?? false;

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-spool-lock-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshFolder(): Promise<string> {
  const dir = join(root, `f${++counter}`, 'voicemail', 'default', '1000', 'INBOX');
  await mkdir(dir, { recursive: true });
  return dir;
}

/** What a folder holds besides messages: lock files and their temporary names. */
async function lockFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.lock') || n === 'lock').sort();
}



/**
 * Another process taking `<dir>/.lock` exactly as Asterisk does (empty `.lock-XXXXXXXX`, link, unlink
 * the temp name) and holding it for `ms`. Resolves once the lock is held.
 */
async function asteriskHolds(dir: string, ms: number): Promise<ChildProcess> {
  const script = `
    const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
    const [dir, ms] = [process.argv[1], Number(process.argv[2])];
    const tmp = path.join(dir, '.lock-' + crypto.randomBytes(4).toString('hex'));
    fs.closeSync(fs.openSync(tmp, 'wx', 0o666));
    for (;;) { try { fs.linkSync(tmp, path.join(dir, '.lock')); break; } catch (e) { if (e.code !== 'EEXIST') throw e; } }
    fs.unlinkSync(tmp);
    process.stdout.write('locked\\n');
    setTimeout(() => { fs.unlinkSync(path.join(dir, '.lock')); process.exit(0); }, ms);
  `;
  const child = spawn(process.execPath, ['-e', script, dir, String(ms)], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(await firstLine(child), 'locked');
  return child;
}

describe('lockfile mode (asterisk.conf default)', () => {
  it('takes .lock by hard link with vmbridge\'s marker, leaves no temporary file, and gives it back', async () => {
    const dir = await freshFolder();
    resetLockStats();
    const seen = await withFolderLock(dir, 'lockfile', async () => ({
      files: await lockFiles(dir),
      marker: await readFile(join(dir, '.lock'), 'utf8'),
      links: lstatSync(join(dir, '.lock')).nlink,
    }));
    assert.deepEqual(seen.files, ['.lock']);
    assert.equal(seen.marker, `vmbridge ${hostname()} ${process.pid}\n`);
    assert.equal(seen.links, 1, 'the temporary name is gone while the lock is held');
    assert.deepEqual(await lockFiles(dir), []);
    const s = lockStats();
    assert.equal(s.holds, 1);
    assert.ok(s.maxHoldMs >= 0 && s.maxHoldMs < 1000);
    assert.equal(s.timeouts, 0);
  });

  it('the default timeout is below Asterisk\'s 5 s, and a longer one is cut to below it', () => {
    assert.ok(DEFAULT_LOCK_TIMEOUT_MS < ASTERISK_LOCK_TIMEOUT_MS);
    assert.equal(DEFAULT_LOCK_TIMEOUT_MS, 4000);
  });

  it('the marker reads back; Asterisk\'s empty file is not a marker', () => {
    assert.deepEqual(parseLockMarker(lockMarker('pbx1', 42)), { host: 'pbx1', pid: 42 });
    assert.equal(parseLockMarker(''), undefined);
    assert.equal(parseLockMarker('vmbridge pbx1\n'), undefined);
  });

  it('waits while another process holds .lock the Asterisk way (800 ms), then proceeds', async () => {
    const dir = await freshFolder();
    const holder = await asteriskHolds(dir, 800);
    resetLockStats();
    const t0 = performance.now();
    const content = await withFolderLock(dir, 'lockfile', () => readFile(join(dir, '.lock'), 'utf8'));
    const waited = performance.now() - t0;
    await exited(holder);
    assert.equal(content, lockMarker(), 'the lock it got is its own');
    assert.ok(waited >= 600, `waited ${waited} ms`);
    assert.ok(waited < 2000, `waited ${waited} ms`);
    assert.ok(lockStats().totalWaitMs >= 600);
    assert.deepEqual(await lockFiles(dir), []);
  });

  it('a lock held past the timeout fails with LockTimeoutError naming Asterisk; its .lock is untouched', async () => {
    const dir = await freshFolder();
    const holder = await asteriskHolds(dir, 3000);
    try {
      const before = lstatSync(join(dir, '.lock'));
      resetLockStats();
      let ran = false;
      await assert.rejects(
        withFolderLock(dir, 'lockfile', () => {
          ran = true;
        }, { timeoutMs: 300 }),
        (err: unknown) => {
          assert.ok(err instanceof LockTimeoutError);
          assert.equal(err.code, 'SPOOL_LOCKED');
          assert.equal(err.folder, dir);
          assert.match(err.holder, /^Asterisk/);
          assert.ok(err.waitedMs >= 300);
          return true;
        },
      );
      assert.equal(ran, false);
      const now = lstatSync(join(dir, '.lock'));
      assert.equal(now.ino, before.ino, 'Asterisk\'s lock is still the same file');
      assert.deepEqual(await lockFiles(dir), ['.lock'], 'no temporary file left behind');
      assert.equal(lockStats().timeouts, 1);
    } finally {
      holder.kill('SIGKILL');
      await exited(holder);
    }
  });

  it('a missing folder is a LockError, not a wait', async () => {
    await assert.rejects(lockFolder(join(root, 'nope', 'INBOX'), 'lockfile'), LockError);
  });

  it('release leaves alone a .lock that is no longer its own', async () => {
    const dir = await freshFolder();
    const lock = await lockFolder(dir, 'lockfile');
    // Someone removes it by hand and Asterisk takes the folder.
    await unlink(join(dir, '.lock'));
    await writeFile(join(dir, '.lock'), '');
    resetLockStats();
    assert.equal(lock.release(), false);
    assert.ok(existsSync(join(dir, '.lock')), 'Asterisk\'s lock survives');
    assert.equal(lockStats().lost, 1);
  });

  it('two lockers in one process take turns', async () => {
    const dir = await freshFolder();
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        withFolderLock(dir, 'lockfile', async () => {
          order.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 30));
          order.push(`${name}-`);
        }),
      ),
    );
    for (let i = 0; i < order.length; i += 2) assert.equal(order[i]?.[0], order[i + 1]?.[0], `overlap: ${order.join(' ')}`);
  });
});

describe('clearOwnStaleLocks', () => {
  it('removes the .lock of a vmbridge killed while holding it, and leaves Asterisk\'s empty .lock alone', async () => {
    const dir = await freshFolder();
    const spool = join(dir, '..', '..', '..', '..');
    const asteriskFolder = join(dir, '..', 'Old');
    await mkdir(asteriskFolder);
    await writeFile(join(asteriskFolder, '.lock'), ''); // Asterisk's, maybe stale: never ours to remove

    // A real vmbridge process takes the lock and is killed while holding it.
    const script = join(root, `holder-${counter}.mts`);
    await writeFile(
      script,
      `import { withFolderLock } from ${JSON.stringify(LOCK_MODULE)};\n` +
        `await withFolderLock(process.argv[2], 'lockfile', async () => {\n` +
        `  process.stdout.write('held\\n');\n` +
        `  await new Promise((r) => setInterval(r, 1000));\n` +
        `});\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(await firstLine(child), 'held');
    child.kill('SIGKILL');
    await exited(child);
    assert.equal(await readFile(join(dir, '.lock'), 'utf8'), `vmbridge ${hostname()} ${child.pid}\n`);

    // Other leftovers: our dead temp file, another host's lock, a live process's lock.
    const work = join(dir, '..', 'Work');
    const family = join(dir, '..', 'Family');
    await mkdir(work);
    await mkdir(family);
    await writeFile(join(dir, '.lock-0badc0de'), lockMarker(hostname(), child.pid as number));
    await writeFile(join(work, '.lock'), lockMarker('other-host', child.pid as number));
    await writeFile(join(family, '.lock'), lockMarker(hostname(), process.ppid));

    const repaired: string[] = [];
    const report = await clearOwnStaleLocks(spool, {
      repair: async (folder) => {
        // The folder is still locked, by us, while it is repaired.
        repaired.push(`${folder}:${await readFile(join(folder, '.lock'), 'utf8')}`);
      },
    });
    assert.deepEqual(report.removed, [join(dir, '.lock')]);
    assert.deepEqual(report.removedTemp, [join(dir, '.lock-0badc0de')]);
    assert.deepEqual(repaired, [`${dir}:${lockMarker()}`]);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(await lockFiles(dir), []);
    assert.ok(existsSync(join(asteriskFolder, '.lock')), 'Asterisk\'s empty .lock is left alone');
    assert.ok(existsSync(join(work, '.lock')), 'another host\'s lock is left alone');
    assert.ok(existsSync(join(family, '.lock')), 'a live process\'s lock is left alone');
    const kept = new Map(report.kept.map((k) => [k.path, k.holder]));
    assert.equal(kept.get(join(asteriskFolder, '.lock')), 'Asterisk');
    assert.match(kept.get(join(work, '.lock')) ?? '', /other-host/);
  });

  it('its own PID in a lock it does not hold is stale (a restart that got the same PID)', async () => {
    const dir = await freshFolder();
    const spool = join(dir, '..', '..', '..', '..');
    await writeFile(join(dir, '.lock'), lockMarker());
    const report = await clearOwnStaleLocks(spool);
    assert.deepEqual(report.removed, [join(dir, '.lock')]);
    // ...but not one it holds right now.
    await withFolderLock(dir, 'lockfile', async () => {
      const again = await clearOwnStaleLocks(spool);
      assert.deepEqual(again.removed, []);
      assert.ok(existsSync(join(dir, '.lock')));
    });
  });

  it('a spool without voicemail/ is nothing to do', async () => {
    const report = await clearOwnStaleLocks(join(root, 'empty-spool'));
    assert.deepEqual(report, { removed: [], removedTemp: [], repaired: [], kept: [], problems: [] });
  });
});

describe('flock mode', { skip: HAVE_FLOCK ? false : 'util-linux flock(1) is not installed' }, () => {
  it('locks <folder>/lock (0600) with flock(2) and unlinks it on release', async () => {
    const dir = await freshFolder();
    await withFolderLock(dir, 'flock', async () => {
      const st = await stat(join(dir, 'lock'));
      assert.equal(st.mode & 0o777, 0o600);
      // Another process cannot get it now.
      const probe = spawnSync('flock', ['-x', '-n', '-E', '75', join(dir, 'lock'), 'true']);
      assert.equal(probe.status, 75);
    });
    assert.deepEqual(await lockFiles(dir), []);
  });

  it('waits for another process holding the flock (800 ms), then proceeds', async () => {
    const dir = await freshFolder();
    const holder = spawn('flock', ['-x', join(dir, 'lock'), '-c', 'echo locked; sleep 0.8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(await firstLine(holder), 'locked');
    const t0 = performance.now();
    await withFolderLock(dir, 'flock', () => undefined);
    const waited = performance.now() - t0;
    await exited(holder);
    assert.ok(waited >= 600 && waited < 2500, `waited ${waited} ms`);
  });

  it('copes with Asterisk\'s unlock (unlink, then close): locks the new file, not the removed one', async () => {
    const dir = await freshFolder();
    const path = join(dir, 'lock');
    const holder = spawn('flock', ['-x', path, '-c', `echo locked; sleep 0.4; rm -f ${JSON.stringify(path)}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(await firstLine(holder), 'locked');
    await withFolderLock(dir, 'flock', async () => {
      // What is held is the file at the path now.
      const probe = spawnSync('flock', ['-x', '-n', '-E', '75', path, 'true']);
      assert.equal(probe.status, 75);
    });
    await exited(holder);
  });

  it('times out with LockTimeoutError while another process holds it', async () => {
    const dir = await freshFolder();
    const holder = spawn('flock', ['-x', join(dir, 'lock'), '-c', 'echo locked; sleep 3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      assert.equal(await firstLine(holder), 'locked');
      await assert.rejects(withFolderLock(dir, 'flock', () => undefined, { timeoutMs: 300 }), LockTimeoutError);
    } finally {
      holder.kill('SIGKILL');
      await exited(holder);
    }
  });

  it('refuses a lock file that is a symbolic link or has other hard links, as Asterisk does', async () => {
    const dir = await freshFolder();
    await writeFile(join(root, 'elsewhere'), '');
    await symlink(join(root, 'elsewhere'), join(dir, 'lock'));
    await assert.rejects(withFolderLock(dir, 'flock', () => undefined), LockError);
    await unlink(join(dir, 'lock'));
    await link(join(root, 'elsewhere'), join(dir, 'lock'));
    await assert.rejects(withFolderLock(dir, 'flock', () => undefined), /hard links/);
  });

  it('without the flock command: a clear error telling the administrator what to do', async () => {
    const dir = await freshFolder();
    await assert.rejects(withFolderLock(dir, 'flock', () => undefined, { flockCommand: join(root, 'no-such-flock') }), (err: unknown) => {
      assert.ok(err instanceof FlockUnavailableError);
      assert.match(err.message, /util-linux/);
      assert.match(err.message, /lockmode=lockfile/);
      return true;
    });
  });
});
