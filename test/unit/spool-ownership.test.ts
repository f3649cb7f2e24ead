/**
 * Whose the folders vmbridge creates in the spool are: asterisk.conf's runuser/rungroup when it runs
 * as root, else the mailbox folder's owner; with Asterisk's modes (0777 minus the umask). Messages
 * are left the way Asterisk leaves them (test/support/asterisk-spool.ts) and owned by a real
 * unprivileged user, as a spool of an Asterisk running as that user is.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chown, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveRunUser, parseEntry, spoolOwnership } from '../../src/config/run-user.js';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { openFileSpool } from '../../src/store/open.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';

const asRoot = process.geteuid?.() === 0 ? false : 'chown to another user needs root';
/** An unprivileged user and group every Debian system has. */
const USER = 'nobody';
const GROUP = 'nogroup';
const idOf = (db: string, name: string): number => Number(execFileSync('getent', [db, name], { encoding: 'utf8' }).split(':')[2]);
const UID = idOf('passwd', USER);
const USER_GID = Number(execFileSync('getent', ['passwd', USER], { encoding: 'utf8' }).split(':')[3]);
const GID = idOf('group', GROUP);
const ref = { context: 'default', mailbox: '1000' };

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-owner-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function setup(asteriskConf?: string): Promise<{ spool: string; box: string; settings: Settings; conf?: string }> {
  const spool = join(root, `spool-${++counter}`);
  const box = join(spool, 'voicemail', 'default', '1000');
  let conf: string | undefined;
  if (asteriskConf !== undefined) {
    conf = join(root, `asterisk-${counter}.conf`);
    await writeFile(conf, asteriskConf);
  }
  const settings = settingsSchema.parse({ imap: { host: '127.0.0.1' }, spool: { dir: spool, ...(conf ? { asteriskConf: conf } : {}) } });
  return { spool, box, settings, ...(conf ? { conf } : {}) };
}

/** Everything under `dir` given to uid:gid, as an Asterisk running as that user leaves it. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

async function lockFilesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.name === 'lock' || e.name.startsWith('.lock')) found.push(join(e.parentPath, e.name));
  }
  return found;
}

describe('asterisk.conf runuser/rungroup as ids', () => {
  it('names become uid and gid; runuser alone means its primary group, as in Asterisk', async () => {
    const both = await setup(`[options]\nrunuser = ${USER}\nrungroup = ${GROUP}\n`);
    assert.deepEqual(await spoolOwnership(both.settings, { root: true }), { uid: UID, gid: GID });
    const user = await setup(`[options]\nrunuser = ${USER}\n`);
    assert.deepEqual(await spoolOwnership(user.settings, { root: true }), { uid: UID, gid: USER_GID });
    const group = await setup(`[options]\nrungroup = ${GROUP}\n`);
    assert.deepEqual(await spoolOwnership(group.settings, { root: true }), { gid: GID });
  });

  it('not root: nothing is given away; root without asterisk.conf: the mailbox folder decides', async () => {
    const s = await setup(`[options]\nrunuser = ${USER}\n`);
    assert.equal(await spoolOwnership(s.settings, { root: false }), undefined);
    assert.deepEqual(await spoolOwnership((await setup()).settings, { root: true }), {});
  });

  it('an unknown or unusable name is a ConfigError naming asterisk.conf and the key', async () => {
    const user = await setup('[options]\nrunuser = vmbridge-no-such-user\n');
    await assert.rejects(spoolOwnership(user.settings, { root: true }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.file, user.conf);
      assert.equal(err.key, 'runuser');
      assert.match(err.message, /vmbridge-no-such-user.*no such user/);
      assert.ok(err.message.includes(user.conf as string));
      return true;
    });
    await assert.rejects(resolveRunUser('/x/asterisk.conf', undefined, 'vmbridge-no-such-group'), (err: unknown) => err instanceof ConfigError && err.key === 'rungroup' && err.file === '/x/asterisk.conf');
    await assert.rejects(resolveRunUser('/x/asterisk.conf', '-r', undefined), (err: unknown) => err instanceof ConfigError && /not a usable user name/.test(err.message));
  });

  it('passwd and group lines are matched by name, never by number', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nasterisk:x:113:118::/var/lib/asterisk:/usr/sbin/nologin\n';
    assert.deepEqual(parseEntry('passwd', passwd, 'asterisk'), { id: 113, gid: 118 });
    assert.equal(parseEntry('passwd', passwd, '113'), undefined);
    assert.deepEqual(parseEntry('group', 'asterisk:x:118:vmbridge\n', 'asterisk'), { id: 118 });
    assert.equal(parseEntry('group', 'asterisk:x::\n', 'asterisk'), undefined, 'no id');
  });
});

describe('what vmbridge creates in the spool, run as root', () => {
  it('a move into a folder not there yet creates it as runuser:rungroup with 0777 minus the umask; the files keep Asterisk\'s owner', { skip: asRoot }, async () => {
    const s = await setup(`[options]\nrunuser = ${USER}\nrungroup = ${GROUP}\n`);
    const a = await leaveVoicemail(s.spool, ref, { duration: 2 });
    const b = await leaveVoicemail(s.spool, ref, { duration: 2 });
    await chownTree(s.box, UID, GID);
    const store = await openFileSpool(s.settings);
    await withUmask(0o027, async () => {
      const moved = await store.move({ ref }, a.msgId, 'INBOX', 'Work');
      assert.equal(moved.done, true);
    });
    const work = await stat(join(s.box, 'Work'));
    assert.deepEqual([work.uid, work.gid, work.mode & 0o7777], [UID, GID, 0o750]);
    const files = await readdir(join(s.box, 'Work'));
    assert.ok(files.includes('msg0000.txt'), files.join(' '));
    for (const name of files) {
      const st = await stat(join(s.box, 'Work', name));
      assert.deepEqual([st.uid, st.gid], [UID, GID], name);
      if (name.endsWith('.txt')) assert.equal(st.mode & 0o7777, 0o666, 'Asterisk leaves the .txt at exactly 0666');
    }
    // INBOX was renumbered (b became msg0000): the renamed files keep their owner too.
    for (const name of await readdir(join(s.box, 'INBOX'))) {
      const st = await stat(join(s.box, 'INBOX', name));
      assert.deepEqual([st.uid, st.gid], [UID, GID], `INBOX/${name}`);
    }
    assert.ok(b.msgnum === 1 && (await readdir(join(s.box, 'INBOX'))).includes('msg0000.txt'));
    assert.deepEqual(await lockFilesUnder(s.box), [], 'no lock file is left');
  });

  it('without runuser/rungroup the mailbox folder\'s owner is used, for Deleted/ as well', { skip: asRoot }, async () => {
    const s = await setup();
    const a = await leaveVoicemail(s.spool, ref, { duration: 2 });
    await chownTree(s.box, UID, GID);
    const store = await openFileSpool(s.settings);
    await withUmask(0o002, async () => {
      await store.move({ ref }, a.msgId, 'INBOX', 'Family');
      await store.remove({ ref, backupDeleted: 5 }, a.msgId, 'Family');
    });
    for (const folder of ['Family', 'Deleted']) {
      const st = await stat(join(s.box, folder));
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [UID, GID, 0o775], folder);
    }
    const kept = await readdir(join(s.box, 'Deleted'));
    assert.ok(kept.includes('msg0000.txt'), kept.join(' '));
    for (const name of kept) assert.equal((await stat(join(s.box, 'Deleted', name))).uid, UID, name);
    assert.deepEqual(await lockFilesUnder(s.box), [], 'no lock file is left');
  });

  it('an unknown runuser stops the spool from opening', { skip: asRoot }, async () => {
    const s = await setup('[options]\nrunuser = vmbridge-no-such-user\n');
    await assert.rejects(openFileSpool(s.settings), (err: unknown) => err instanceof ConfigError && err.key === 'runuser' && err.file === s.conf);
  });
});
