/**
 * The reconcile of one mailbox (level-triggered: it looks at both sides each time, so any number
 * of missed or repeated events lead to the same result), in four named phases (docs/sync.md):
 *
 *   observe  the store, IMAP and the records of the last agreement   reconcile/observe.ts
 *   plan     the decision table, a second look before deletions,    reconcile/decide.ts
 *            the safety stop
 *   apply    each op, its record written right after it             reconcile/apply.ts
 *   publish  the counts for the lamps, the followers (quota watch)  reconcile/publish.ts
 *
 * Every op is idempotent and its record is written right after it, so a crash at any point is
 * followed by a reconcile that finishes the job without duplicates.
 */
import { mailboxKey } from '../spool/types.js';
import type { BoxInfo } from './directory.js';
import { apply } from './reconcile/apply.js';
import { decide } from './reconcile/decide.js';
import { observeImapSide, observeStore } from './reconcile/observe.js';
import { publish } from './reconcile/publish.js';
import { quickLook, quickLookKnown, uniquePaths, type QuickLook } from './reconcile/quick-look.js';
import { mwiCounts } from '../mwi/counts.js';
import type { Plan } from './plan.js';
import type { ImapView, MailboxRun, ReconcileDeps, ReconcileOptions, ReconcilePhases, ReconcileResult, StoreView } from './reconcile/types.js';

export { checkSafety } from './reconcile/decide.js';
export type { ReconcileDeps, ReconcileOptions, ReconcilePhases, ReconcileResult, SkippedOp } from './reconcile/types.js';

export async function reconcileMailbox(deps: ReconcileDeps, box: BoxInfo, opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  const { run, timer, store } = await observe(deps, box);
  // Where Dovecot's doveadm API already told the folders' status, a quiet mailbox needs no login.
  if (opts.quickLook && !opts.dryRun) {
    const quiet = await quietByKnownStatus(run, store, timer);
    if (quiet) return quiet;
  }
  return reconcileOverImap(run, store, timer, opts);
}

/**
 * The quick look alone, from the folder status Dovecot's doveadm API gave for every user: the
 * result of a reconcile that found nothing to do, or undefined when only IMAP can tell (no
 * snapshot, no quiet mark, or something differs). Nothing is changed and no login is made, so a
 * pass can settle a quiet mailbox without queueing a job for it (docs/sync.md).
 */
export async function reconcileIfKnownQuiet(deps: ReconcileDeps, box: BoxInfo): Promise<ReconcileResult | undefined> {
  if (!deps.knownFolderStatus || !deps.quietMarks) return undefined;
  const { run, timer, store } = await observe(deps, box);
  return quietByKnownStatus(run, store, timer);
}

/** The first phase of every reconcile: the store's side, timed. */
async function observe(deps: ReconcileDeps, box: BoxInfo): Promise<{ run: MailboxRun; timer: PhaseTimer; store: StoreView }> {
  const run: MailboxRun = { deps, box, log: deps.log.child({ mailbox: mailboxKey(box.ref) }) };
  const timer = new PhaseTimer();
  const store = await observeStore(run);
  timer.lap('spoolMs');
  return { run, timer, store };
}

async function quietByKnownStatus(run: MailboxRun, store: StoreView, timer: PhaseTimer): Promise<ReconcileResult | undefined> {
  const known = run.deps.knownFolderStatus ? await run.deps.knownFolderStatus(run.box.account) : undefined;
  const look = known ? await quickLookKnown(run, store, known) : undefined;
  if (!look?.unchanged || !look.mark) return undefined;
  timer.lap('imapMs');
  return quietResult(store, look.mark, timer);
}

/** Nothing changed on either side since it was last found quiet: nothing to plan or publish anew. */
function quietResult(store: StoreView, mark: { readonly imapTotal: number }, timer: PhaseTimer): ReconcileResult {
  return { plan: { ops: [], held: [] }, spoolProblems: store.snapshot.problems, spoolTotal: store.sides.size, imapTotal: mark.imapTotal, applied: 0, skipped: [], phases: timer.phases, counts: mwiCounts(store.snapshot), unchanged: true };
}

async function reconcileOverImap(run: MailboxRun, store: StoreView, timer: PhaseTimer, opts: ReconcileOptions): Promise<ReconcileResult> {
  const { deps, box } = run;
  return deps.imap.withClient(box.account, async (client, caps) => {
    const look = opts.quickLook && caps.condstore && !opts.dryRun ? await quickLook(run, store, client) : undefined;
    if (look?.unchanged && look.mark) {
      timer.lap('imapMs');
      return quietResult(store, look.mark, timer);
    }
    const imap = await observeImapSide(run, store, client, caps, opts);
    timer.lap('imapMs');
    const decision = await decide(run, store, imap, opts);
    timer.lap('planMs');
    const base = { plan: decision.plan, spoolProblems: store.snapshot.problems, spoolTotal: store.sides.size, imapTotal: imap.observed.copies.size };
    if (opts.dryRun) return { ...base, applied: 0, skipped: [], phases: timer.phases };
    const applied = decision.plan.ops.length === 0
      ? { applied: 0, appended: 0, skipped: [] }
      : await apply(run, store, imap, decision, opts);
    const counts = await publish(run, store, imap, decision.plan.ops, applied);
    timer.lap('applyMs');
    // What could be done is done; the store changes are retried (and the lamps follow the store meanwhile).
    if (applied.deferred) throw applied.deferred;
    await rememberQuiet(run, look, imap, decision.plan, applied.skipped.length, counts !== undefined);
    return { ...base, applied: applied.applied, skipped: applied.skipped, phases: timer.phases, ...(counts ? { counts } : {}) };
  });
}

/**
 * After a full look: a background reconcile that found nothing to do leaves a quiet mark; one
 * that changed anything, or could not tell, leaves none (the next quick look then looks in full).
 */
async function rememberQuiet(run: MailboxRun, look: QuickLook | undefined, imap: ImapView, plan: Plan, skipped: number, counted: boolean): Promise<void> {
  const marks = run.deps.quietMarks;
  if (!marks) return;
  const quiet = plan.ops.length === 0 && plan.held.length === 0 && skipped === 0 && counted && imap.accountChanged === undefined;
  const candidate = look?.candidate;
  // The mark must cover exactly the folders this look mapped (a changed imap.folders maps others).
  const sameFolders = candidate !== undefined && Object.keys(candidate.folders).sort().join('\n') === uniquePaths(imap.paths).join('\n');
  if (quiet && candidate && sameFolders) await marks.set(run.box.ref, { ...candidate, imapTotal: imap.observed.copies.size });
  else if (look?.mark !== undefined || plan.ops.length > 0) await marks.forget(run.box.ref);
}

/** Milliseconds per phase, for the `reconciled` log line. */
class PhaseTimer {
  readonly phases: ReconcilePhases = { spoolMs: 0, imapMs: 0, planMs: 0, applyMs: 0 };
  private mark = performance.now();

  lap(phase: keyof ReconcilePhases): void {
    const now = performance.now();
    this.phases[phase] += Math.round((now - this.mark) * 10) / 10;
    this.mark = now;
  }
}
