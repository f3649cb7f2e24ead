/**
 * Scale-out: three `vmbridge run` processes on one Redis, one spool and one Dovecot share 30
 * mailboxes through the BullMQ queues. During a burst of voicemail one of them is killed with
 * SIGKILL while it is inside a reconcile. Afterwards every voicemail is in its IMAP account exactly
 * once, none is missing from the spool, both survivors did reconciles, the killed process's job
 * came back (stalled) and finished instead of failing, and no two reconciles of one mailbox ever
 * overlapped, across all three processes (from the `reconcile started` / `reconcile ended` lines).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND } from '../../src/queue/jobs.js';
import { mailboxKey, type MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { exited } from '../support/child.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOMAIN = 'vmbridge.test';
const MAILBOXES = 30;
const PER_MAILBOX = 4;
const refs: MailboxRef[] = Array.from({ length: MAILBOXES }, (_, i) => ({ context: 'default', mailbox: String(4000 + i) }));

/** One reconcile as a process logged it: the span in which it held the mailbox's lock. */
interface Span {
  readonly proc: number;
  readonly mailbox: string;
  readonly reason: string;
  readonly queue: string;
  readonly job: string;
  readonly from: number;
  /** Undefined while it runs (or when its process was killed inside it). */
  readonly until: number | undefined;
}

interface LogLine {
  readonly msg?: string;
  readonly mailbox?: string;
  readonly reason?: string;
  readonly queue?: string;
  readonly job?: string;
  readonly heldFrom?: number;
  readonly heldUntil?: number;
}

function readLines(path: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // the line being written right now
    }
  }
  return out;
}

/** Every reconcile in one process's log, ended ones with their end. */
function spansOf(proc: number, path: string): Span[] {
  const open = new Map<string, Span>();
  const done: Span[] = [];
  for (const l of readLines(path)) {
    if (l.mailbox === undefined || l.job === undefined || l.heldFrom === undefined) continue;
    const key = `${l.queue}/${l.job}/${l.heldFrom}`;
    if (l.msg === 'reconcile started') {
      open.set(key, { proc, mailbox: l.mailbox, reason: l.reason ?? '', queue: l.queue ?? '', job: l.job, from: l.heldFrom, until: undefined });
    } else if (l.msg === 'reconcile ended' && l.heldUntil !== undefined) {
      open.delete(key);
      done.push({ proc, mailbox: l.mailbox, reason: l.reason ?? '', queue: l.queue ?? '', job: l.job, from: l.heldFrom, until: l.heldUntil });
    }
  }
  return [...done, ...open.values()];
}

/** Pairs of spans of one mailbox that overlap; a span cut short by a kill ends at the kill. */
function overlaps(spans: readonly Span[], killedAt: number): Array<[Span, Span]> {
  const byBox = new Map<string, Span[]>();
  for (const s of spans) byBox.set(s.mailbox, [...(byBox.get(s.mailbox) ?? []), s]);
  const found: Array<[Span, Span]> = [];
  for (const list of byBox.values()) {
    list.sort((a, b) => a.from - b.from);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (cur.from < (prev.until ?? killedAt)) found.push([prev, cur]);
    }
  }
  return found;
}

describe('three vmbridge run processes on one Redis, one killed during a burst', { timeout: 900_000 }, () => {
  let h: Harness;
  let configPath: string;
  const children: ChildProcess[] = [];
  const logPaths: string[] = [];
  let redis: Redis;
  let queues: Queue[];

  before(async () => {
    h = await startHarness({
      boxes: refs.map((r) => ({ mailbox: r.mailbox })),
      logLevel: 'debug',
      // The spool watcher of each process hears the burst; externnotify is not what is shown here.
      settings: (base) => ({ ...base, notify: { listen: false } }),
    });
    configPath = join(h.dir, 'vmbridge.yaml');
    await writeFile(configPath, stringify(h.settings));
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    queues = [QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND].map((q) => new Queue(q, { connection: redis, prefix: h.settings.redis.prefix }));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => exited(c)));
    for (const q of queues ?? []) await q.close();
    redis?.disconnect();
    if (process.env.VMB_TEST_LOG) for (const p of logPaths) process.stderr.write(`--- ${p}\n${readFileSync(p, 'utf8')}\n`);
    await h?.stop();
  });

  function start(i: number): ChildProcess {
    const logPath = join(h.dir, `run-${i}.log`);
    logPaths.push(logPath);
    const fd = openSync(logPath, 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'run', '--config', configPath], { cwd: ROOT, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    return p;
  }

  const logged = (i: number, msg: string): boolean => readLines(logPaths[i]!).some((l) => l.msg === msg);

  async function counts(...states: Array<'waiting' | 'active' | 'delayed' | 'prioritized' | 'failed'>): Promise<number> {
    const all = await Promise.all(queues.map((q) => q.getJobCounts(...states)));
    return all.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
  }

  /** Every voicemail in the spool exactly once in its account, and no other email of ours. */
  async function converged(): Promise<string | true> {
    for (const ref of refs) {
      const expected = new Set<string>();
      for (const folder of ['INBOX', 'Urgent'] as const) {
        for (const m of await listFolder(h.spoolDir, ref, folder)) expected.add(identityMessageId(ref, m.msgId, DOMAIN));
      }
      const client = await h.mail(ref);
      const emails = (await client.list(VOICEMAIL_FOLDERS)).filter((e) => e.messageId.endsWith(`@${DOMAIN}>`));
      await client.close();
      const seen = new Map<string, number>();
      for (const e of emails) seen.set(e.messageId, (seen.get(e.messageId) ?? 0) + 1);
      for (const id of expected) if (seen.get(id) !== 1) return `${mailboxKey(ref)}: ${id} in IMAP ${seen.get(id) ?? 0} times`;
      for (const id of seen.keys()) if (!expected.has(id)) return `${mailboxKey(ref)}: stray email ${id}`;
    }
    return true;
  }

  it(`${MAILBOXES} mailboxes, ${PER_MAILBOX}+ voicemails each: all served once, nothing lost, no overlap`, async () => {
    for (let i = 0; i < 3; i++) children.push(start(i));
    for (let i = 0; i < 3; i++) {
      await waitFor(`process ${i} started`, () => {
        if (children[i]!.exitCode !== null) throw new Error(`process ${i} exited: ${readFileSync(logPaths[i]!, 'utf8').slice(-2000)}`);
        return logged(i, 'vmbridge started') || undefined;
      }, { timeoutMs: 120_000, intervalMs: 200 });
    }
    // The start passes of all three drained: the burst meets idle workers.
    await waitFor('start passes done', async () => (await counts('waiting', 'active', 'delayed', 'prioritized')) === 0 || undefined, { timeoutMs: 120_000, intervalMs: 200 });

    const victim = 1;
    const left: Array<{ ref: MailboxRef; msgId: string }> = [];
    let killed: { at: number; span: Span } | undefined;
    const burst = (async () => {
      // Goes on until the kill has happened and every mailbox has PER_MAILBOX voicemails at least.
      for (let round = 0; !killed || round < PER_MAILBOX; round++) {
        for (const ref of refs) {
          const vm = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Burst ${round}" <${5000 + round}>`, duration: 2, urgent: round % 3 === 2 });
          left.push({ ref, msgId: vm.msgId });
        }
      }
    })();
    // SIGKILL while the victim is inside a reconcile that the burst caused, so its job is left active.
    await waitFor('the victim inside a reconcile of the burst', () => {
      if (left.length < MAILBOXES) return undefined;
      const inside = spansOf(victim, logPaths[victim]!).find((s) => s.until === undefined && s.reason === 'watcher');
      if (!inside) return undefined;
      const at = Date.now();
      children[victim]!.kill('SIGKILL');
      killed = { at, span: inside };
      return true;
    }, { timeoutMs: 300_000, intervalMs: 5 });
    const leftAtKill = left.length;
    await burst;
    await exited(children[victim]!);
    const k = killed!;

    let last: string | true = 'not checked';
    await waitFor('every voicemail in IMAP exactly once', async () => (last = await converged()) === true || undefined, { timeoutMs: 300_000, intervalMs: 1_000 })
      .catch((err: Error) => { throw new Error(`${err.message}: ${String(last)}`); });

    // Exclusivity across processes: no two reconciles of one mailbox held it at once.
    const clashes = overlaps([0, 1, 2].flatMap((i) => spansOf(i, logPaths[i]!)), k.at);
    assert.deepEqual(clashes.map(([a, b]) => `${a.mailbox}: process ${a.proc} ${a.from}-${a.until ?? 'killed'} and process ${b.proc} ${b.from}-${b.until ?? '?'}`), []);

    // The job the victim was running comes back to a survivor once BullMQ sees it stalled.
    const survivors = [0, 2];
    const retaken = await waitFor('the killed job taken up again', () => {
      for (const i of survivors) {
        const s = spansOf(i, logPaths[i]!).find((x) => x.queue === k.span.queue && x.job === k.span.job && x.mailbox === k.span.mailbox && x.until !== undefined);
        if (s) return s;
      }
      return undefined;
    }, { timeoutMs: 300_000, intervalMs: 500 });
    await waitFor('queues drained', async () => (await counts('waiting', 'active', 'delayed', 'prioritized')) === 0 || undefined, { timeoutMs: 120_000, intervalMs: 500 });
    assert.equal(await counts('failed'), 0, 'no reconcile job failed for good');

    // Nothing lost: every voicemail left is still in the spool, once.
    const inSpool = new Map<string, number>();
    for (const ref of refs) {
      for (const folder of ['INBOX', 'Urgent'] as const) {
        for (const m of await listFolder(h.spoolDir, ref, folder)) inSpool.set(`${mailboxKey(ref)}/${m.msgId}`, (inSpool.get(`${mailboxKey(ref)}/${m.msgId}`) ?? 0) + 1);
      }
    }
    assert.equal(inSpool.size, left.length);
    for (const vm of left) assert.equal(inSpool.get(`${mailboxKey(vm.ref)}/${vm.msgId}`), 1, `${mailboxKey(vm.ref)} ${vm.msgId} in the spool once`);

    // The survivors both did the burst's work.
    const spans = [0, 1, 2].flatMap((i) => spansOf(i, logPaths[i]!));
    const byProc = [0, 1, 2].map((i) => spans.filter((s) => s.proc === i && s.reason === 'watcher' && s.until !== undefined).length);
    const afterKill = survivors.map((i) => spans.filter((s) => s.proc === i && s.from > k.at).length);
    for (const [n, i] of survivors.entries()) assert.ok(afterKill[n]! > 0, `survivor ${i} reconciled after the kill`);


    process.stdout.write(`# scale-out: ${MAILBOXES} mailboxes, ${left.length} voicemails (${leftAtKill} left at the kill); watcher reconciles by process ${byProc.join('/')}; ` +
      `all reconciles ${[0, 1, 2].map((i) => spans.filter((s) => s.proc === i).length).join('/')}; after the kill ${afterKill.join('/')}; ` +
      `killed inside ${k.span.mailbox} (${k.span.queue} job ${k.span.job}), taken up again by process ${retaken.proc} after ${retaken.from - k.at} ms\n`);
  });
});
