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
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND } from '../../src/queue/jobs.js';
import { lockKey, pendingKey } from '../../src/queue/reconcile-queue.js';
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
/** Rounds of one voicemail per mailbox after which a burst that met no reconcile in progress stops. */
const MAX_ROUNDS = 40;
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

function parseLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // not one of the service's JSON lines
    }
  }
  return out;
}

/**
 * One process's log, read as it grows: only the bytes added since the last look are parsed, so
 * polling it every few milliseconds stays cheap however long the burst makes the log (reading the
 * whole file each time fell behind the short reconciles it was looking for on a slow machine).
 */
class LogTail {
  private offset = 0;
  private partial = Buffer.alloc(0);
  private readonly open = new Map<string, Span>();
  private readonly done: Span[] = [];
  private readonly messages = new Set<string>();

  constructor(private readonly proc: number, private readonly path: string) {}

  /** Reads what was added; only whole lines are taken, the line being written waits for the next look. */
  refresh(): this {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return this; // not made yet
    }
    let added: Buffer;
    try {
      added = Buffer.alloc(Math.max(0, fstatSync(fd).size - this.offset));
      if (added.length > 0) this.offset += readSync(fd, added, 0, added.length, this.offset);
    } finally {
      closeSync(fd);
    }
    if (added.length === 0) return this;
    // Kept as bytes until a newline: a character split between two reads stays whole.
    const text = Buffer.concat([this.partial, added]);
    const cut = text.lastIndexOf(0x0a);
    this.partial = text.subarray(cut + 1);
    for (const l of parseLines(text.subarray(0, cut + 1).toString('utf8'))) this.take(l);
    return this;
  }

  private take(l: LogLine): void {
    if (l.msg !== undefined) this.messages.add(l.msg);
    if (l.mailbox === undefined || l.job === undefined || l.heldFrom === undefined) return;
    const key = `${l.queue}/${l.job}/${l.heldFrom}`;
    if (l.msg === 'reconcile started') {
      this.open.set(key, { proc: this.proc, mailbox: l.mailbox, reason: l.reason ?? '', queue: l.queue ?? '', job: l.job, from: l.heldFrom, until: undefined });
    } else if (l.msg === 'reconcile ended' && l.heldUntil !== undefined) {
      this.open.delete(key);
      this.done.push({ proc: this.proc, mailbox: l.mailbox, reason: l.reason ?? '', queue: l.queue ?? '', job: l.job, from: l.heldFrom, until: l.heldUntil });
    }
  }

  logged(msg: string): boolean {
    return this.refresh().messages.has(msg);
  }

  /** Every reconcile so far, ended ones with their end. */
  spans(): Span[] {
    this.refresh();
    return [...this.done, ...this.open.values()];
  }

  /** A reconcile that has started and not ended. */
  inside(reason: string): Span | undefined {
    this.refresh();
    for (const s of this.open.values()) if (s.reason === reason) return s;
    return undefined;
  }
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
  const tails: LogTail[] = [];
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
    tails.push(new LogTail(i, logPath));
    const fd = openSync(logPath, 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), 'run', '--config', configPath], { cwd: ROOT, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    return p;
  }

  const logged = (i: number, msg: string): boolean => tails[i]!.logged(msg);
  const allSpans = (): Span[] => tails.flatMap((t) => t.spans());

  async function counts(...states: Array<'waiting' | 'active' | 'delayed' | 'prioritized' | 'failed'>): Promise<number> {
    const all = await Promise.all(queues.map((q) => q.getJobCounts(...states)));
    return all.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
  }

  /** What Redis holds for a mailbox that did not converge, so that a failure says where it stuck. */
  async function redisState(ref: MailboxRef): Promise<string> {
    const prefix = h.settings.redis.prefix;
    const [pending, lock, unfinished] = await Promise.all([redis.get(pendingKey(prefix, ref)), redis.get(lockKey(prefix, ref)), counts('waiting', 'active', 'delayed', 'prioritized')]);
    return `pending key ${pending ?? 'unset'}, lock ${lock ?? 'free'}, ${unfinished} jobs unfinished`;
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
      for (const id of expected) if (seen.get(id) !== 1) return `${mailboxKey(ref)}: ${id} in IMAP ${seen.get(id) ?? 0} times (${await redisState(ref)})`;
      for (const id of seen.keys()) if (!expected.has(id)) return `${mailboxKey(ref)}: stray email ${id} (${await redisState(ref)})`;
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

    const left: Array<{ ref: MailboxRef; msgId: string }> = [];
    let killed: { at: number; proc: number; span: Span } | undefined;
    // Goes on until the kill has happened and every mailbox has PER_MAILBOX voicemails at least; a
    // burst that never met a reconcile in progress ends at MAX_ROUNDS, and the wait below says so.
    let rounds = 0;
    const burst = (async () => {
      for (; (!killed || rounds < PER_MAILBOX) && rounds < MAX_ROUNDS; rounds++) {
        for (const ref of refs) {
          const vm = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Burst ${rounds}" <${5000 + rounds}>`, duration: 2, urgent: rounds % 3 === 2 });
          left.push({ ref, msgId: vm.msgId });
        }
      }
    })();
    // SIGKILL whichever process is first seen inside a reconcile that the burst caused, so its job
    // is left active with its lock held. Any of the three will do: waiting for one chosen in
    // advance could wait for ever on a machine where the other two take nearly every job.
    await waitFor('a process inside a reconcile of the burst', () => {
      if (left.length < MAILBOXES) return undefined;
      for (const [proc, tail] of tails.entries()) {
        const inside = tail.inside('watcher');
        if (!inside) continue;
        const at = Date.now();
        children[proc]!.kill('SIGKILL');
        killed = { at, proc, span: inside };
        return true;
      }
      if (rounds >= MAX_ROUNDS) throw new Error(`${left.length} voicemails left and no reconcile of theirs was seen in progress: ${[0, 1, 2].map((i) => `process ${i} ${tails[i]!.spans().length} reconciles`).join(', ')}`);
      return undefined;
    }, { timeoutMs: 300_000, intervalMs: 5 });
    const leftAtKill = left.length;
    await burst;
    const k = killed!;
    await exited(children[k.proc]!);

    let last: string | true = 'not checked';
    await waitFor('every voicemail in IMAP exactly once', async () => (last = await converged()) === true || undefined, { timeoutMs: 300_000, intervalMs: 1_000 })
      .catch((err: Error) => { throw new Error(`${err.message}: ${String(last)}`); });

    // Exclusivity across processes: no two reconciles of one mailbox held it at once.
    const clashes = overlaps(allSpans(), k.at);
    assert.deepEqual(clashes.map(([a, b]) => `${a.mailbox}: process ${a.proc} ${a.from}-${a.until ?? 'killed'} and process ${b.proc} ${b.from}-${b.until ?? '?'}`), []);

    // The job the victim was running comes back to a survivor once BullMQ sees it stalled.
    const survivors = [0, 1, 2].filter((i) => i !== k.proc);
    const retaken = await waitFor('the killed job taken up again', () => {
      for (const i of survivors) {
        const s = tails[i]!.spans().find((x) => x.queue === k.span.queue && x.job === k.span.job && x.mailbox === k.span.mailbox && x.until !== undefined);
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
    const spans = allSpans();
    const byProc = [0, 1, 2].map((i) => spans.filter((s) => s.proc === i && s.reason === 'watcher' && s.until !== undefined).length);
    const afterKill = survivors.map((i) => spans.filter((s) => s.proc === i && s.from > k.at).length);
    for (const [n, i] of survivors.entries()) assert.ok(afterKill[n]! > 0, `survivor ${i} reconciled after the kill`);


    process.stdout.write(`# scale-out: ${MAILBOXES} mailboxes, ${left.length} voicemails (${leftAtKill} left at the kill); watcher reconciles by process ${byProc.join('/')}; ` +
      `all reconciles ${[0, 1, 2].map((i) => spans.filter((s) => s.proc === i).length).join('/')}; after the kill ${afterKill.join('/')}; ` +
      `process ${k.proc} killed inside ${k.span.mailbox} (${k.span.queue} job ${k.span.job}), taken up again by process ${retaken.proc} after ${retaken.from - k.at} ms\n`);
  });
});
