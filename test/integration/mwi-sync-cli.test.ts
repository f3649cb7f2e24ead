/**
 * `vmbridge sync`, the one-shot command, run as a child process with no service running: after
 * reconciling a mailbox it tells every MWI target (ami-refresh, ami-mwiupdate, ami-mailboxstate,
 * sip-notify; test/support/mwi-targets.ts) the final counts, once, directly, and only where they
 * differ from what that target was last told. Real Dovecot and Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { mwiQueueName } from '../../src/queue/mwi-queue.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { hearMessage, leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { MwiTargets, TARGET_NAMES, type Marks } from '../support/mwi-targets.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('vmbridge sync publishes MWI once, directly, when the counts changed', { timeout: 180_000 }, () => {
  let spoolDir: string;
  let targets: MwiTargets;
  let h: Harness;
  let configPath: string;
  const a = box('5000');
  const b = box('5001');

  const sync = (config: string, ...args: string[]): Promise<Run> =>
    new Promise((done) => {
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'sync', '--config', config, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      });
    });
  /** Nothing new reached any target for `ref` since `mark`. */
  const untouched = async (ref: MailboxRef, mark: Marks, why: string): Promise<void> => {
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await targets.marks(ref), mark, why);
  };

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-sync-mwi-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    targets = await MwiTargets.start(spoolDir);
    h = await startHarness({
      boxes: [{ mailbox: a.mailbox }, { mailbox: b.mailbox }],
      settings: (base) => ({
        ...base,
        spool: { ...(base.spool as object), dir: spoolDir },
        mwi: { targets: targets.settings(), retrySeconds: 1, retryMaxSeconds: 2, concurrency: 4 },
      }),
    });
    configPath = join(h.dir, 'vmbridge.yaml');
    await writeFile(configPath, stringify(h.settings));
  });
  after(async () => {
    await h?.stop();
    await targets?.stop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  it('tells every target the final counts once; a second run with nothing changed tells no one', async () => {
    const mc = await h.mail(a);
    const left = [await leaveVoicemail(spoolDir, a, { callerid: '"One" <1>', duration: 2 }), await leaveVoicemail(spoolDir, a, { callerid: '"Two" <2>', duration: 2 })];
    await leaveVoicemail(spoolDir, b, { callerid: '"Urgent" <3>', duration: 2, urgent: true });

    const first = await sync(configPath);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /\[1\/2\] 5000@default: 2 changes applied\n/);
    assert.match(first.stdout, /\n {4}MWI 2\/0 \(0 urgent\): owner published, phone published, remote published, proxy published\n/);
    assert.match(first.stdout, /\n {4}MWI 1\/0 \(1 urgent\): owner published, phone published, remote published, proxy published\n/);
    const inbox = (await mc.list(['INBOX'])).map((e) => e.messageId).sort();
    assert.deepEqual(inbox, left.map((l) => identityMessageId(a, l.msgId, 'vmbridge.test')).sort(), 'the emails are there');

    // Each target was told once per mailbox, and what it shows is right.
    await targets.allShow(a, { new: 2, old: 0, urgent: 0 }, { owner: 0, phone: 0, remote: 0, proxy: 0 }, { timeoutMs: 5_000 });
    await targets.allShow(b, { new: 1, old: 0, urgent: 1 }, { owner: 0, phone: 0, remote: 0, proxy: 0 }, { timeoutMs: 5_000 });
    assert.deepEqual(await targets.marks(a), { owner: 1, phone: 1, remote: 1, proxy: 1 });
    assert.deepEqual(await targets.marks(b), { owner: 1, phone: 1, remote: 1, proxy: 1 });
    assert.deepEqual((await targets.sipShown(b)).at(-1)?.lines, ['Messages-Waiting: yes', 'Voice-Message: 1/0 (1/0)']);

    const mark = await targets.marks(a);
    const again = await sync(configPath, '--mailbox', '5000@default');
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /5000@default: in step, nothing to do\n {4}MWI 2\/0 \(0 urgent\): owner unchanged, phone unchanged, remote unchanged, proxy unchanged\n/);
    await untouched(a, mark, 'nothing changed: nothing sent');
  });

  it('after a change on the phone: --dry-run and --no-mwi tell no one, a plain sync tells every target', async () => {
    await hearMessage(spoolDir, a, 0);
    const mark = await targets.marks(a);

    const dry = await sync(configPath, '--dry-run', '--mailbox', '5000@default');
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.doesNotMatch(dry.stdout, /MWI/);
    const noMwi = await sync(configPath, '--no-mwi', '--mailbox', '5000@default');
    assert.equal(noMwi.code, 0, noMwi.stdout + noMwi.stderr);
    assert.match(noMwi.stdout, /5000@default: 1 change applied\n/);
    assert.doesNotMatch(noMwi.stdout, /MWI/);
    await untouched(a, mark, '--dry-run and --no-mwi publish nothing');

    // The reconcile was done by --no-mwi; the counts it left (1/1) still reach every target.
    const plain = await sync(configPath, '--mailbox', '5000@default');
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /in step, nothing to do\n {4}MWI 1\/1 \(0 urgent\): owner published, phone published, remote published, proxy published\n/);
    await targets.allShow(a, { new: 1, old: 1, urgent: 0 }, mark, { timeoutMs: 5_000 });
    for (const name of TARGET_NAMES) assert.equal((await targets.marks(a))[name], mark[name] + 1, `${name} told once`);
  });

  it('a target that cannot be reached: the others are told, the failure is reported with exit code 1, and a retry is queued for vmbridge run', async () => {
    const deadPort = await freePort();
    const settings = { ...h.settings, mwi: { ...h.settings.mwi, targets: h.settings.mwi.targets.map((t) => (t.name === 'phone' ? { ...t, port: deadPort, timeoutSeconds: 2 } : t)) } };
    const deadConfig = join(h.dir, 'vmbridge-dead-phone.yaml');
    await writeFile(deadConfig, stringify(settings));
    await leaveVoicemail(spoolDir, a, { callerid: '"Three" <4>', duration: 2 });
    await leaveVoicemail(spoolDir, b, { callerid: '"Four" <5>', duration: 2 });
    const mark = { a: await targets.marks(a), b: await targets.marks(b) };

    const res = await sync(deadConfig);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /MWI 2\/1 \(0 urgent\): owner published, phone failed, remote published, proxy published\n {4}MWI phone FAILED: .+ \(queued for vmbridge run to retry\)\n/);
    // The dead target is not tried again for the next mailbox (a SIP target would cost 32 s each).
    assert.match(res.stdout, /MWI 2\/0 \(1 urgent\): owner published, phone skipped, remote published, proxy published\n {4}MWI phone skipped after an earlier failure: .+ \(queued for vmbridge run to retry\)\n/);
    for (const [ref, want] of [[a, { new: 2, old: 1, urgent: 0 }], [b, { new: 2, old: 0, urgent: 1 }]] as const) {
      const since = ref === a ? mark.a : mark.b;
      await waitFor(`owner, remote and proxy told ${JSON.stringify(want)} for ${ref.mailbox}`, async () => {
        const now = await targets.marks(ref);
        return now.owner > since.owner && now.remote > since.remote && now.proxy > since.proxy;
      }, { timeoutMs: 5_000 });
      assert.deepEqual(targets.remoteShown(ref).at(-1), { new: want.new, old: want.old });
      assert.deepEqual((await targets.sipShown(ref)).at(-1)?.urgent, want.urgent);
      assert.equal((await targets.marks(ref)).phone, since.phone, 'nothing reached the real phone server');
    }
    // One job per mailbox waits on the phone target's own queue, for the service's worker.
    const redis = new Redis(h.redisUrl);
    const queue = new Queue(mwiQueueName('phone'), { connection: redis, prefix: h.settings.redis.prefix });
    try {
      const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
      assert.deepEqual(jobs.map((j) => j.data as unknown).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))), [{ context: 'default', mailbox: '5000' }, { context: 'default', mailbox: '5001' }]);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
