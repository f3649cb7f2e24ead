/**
 * The reconcile loop for one mailbox (level-triggered: it looks at both sides each time, so any
 * number of missed or repeated events lead to the same result):
 *
 *   observe spool ─┐
 *   observe IMAP  ─┼─> plan(spool, imap, records) -> safety check -> apply each op -> record it
 *   load records  ─┘
 *
 * Every op is idempotent and its record is written right after it, so a crash at any point is
 * followed by a reconcile that finishes the job without duplicates.
 */
import { hostname } from 'node:os';
import type { Settings } from '../config/schema.js';
import { SafetyStopError, SpoolBusyError, SpoolChangeDeferredError, SpoolError } from '../errors.js';
import type { ImapPool } from '../imap/pool.js';
import { rolePaths } from '../imap/folders.js';
import { accountKey } from '../imap/account.js';
import { explainedCount, observeImap } from '../imap/observe.js';
import { noteOwnAppend, noteOwnCount } from '../imap/own-echoes.js';
import { appendEmail, deleteEmail, updateEmail, type Identity } from '../imap/operations.js';
import { buildVoicemailEmail } from '../imap/voicemail-email.js';
import { prepareAttachments, type Converter, type PreparedAttachment } from '../audio/attachments.js';
import type { BreakerState, DeleteBreaker } from '../queue/delete-breaker.js';
import type { EmailTranscriber } from '../transcribe/transcriber.js';
import { isOverQuotaError, refusalText } from '../imap/quota.js';
import type { MailboxWatch } from '../alerts/watch.js';
import type { Logger } from '../log.js';
import { mwiCounts, type MwiCounts } from '../mwi/counts.js';
import { readMailbox, readSpoolFile } from '../spool/read-mailbox.js';
import { isNewFinding } from '../spool/report-once.js';
import { isSyncedSpoolFolder, mailboxKey, type SpoolMessage, type SpoolProblem, type SpoolSnapshot } from '../spool/types.js';
import type { BoxInfo } from './directory.js';
import { adoptLegacyIds } from './legacy-ids.js';
import { initialFlags, placementWish } from './placement.js';
import { countDeletions, plan, type Held, type Op, type Plan, type SpoolSide } from './plan.js';
import type { StateStore } from './state-store.js';
import { SpoolChanger, spoolLockmode } from './spool-changes.js';

export interface ReconcileDeps {
  readonly spoolDir: string;
  readonly settings: Settings;
  readonly state: StateStore;
  readonly imap: ImapPool;
  readonly log: Logger;
  /** Told after the ops are applied (quota, maxmsg, a mailbox refused for quota); optional. */
  readonly watch?: MailboxWatch;
  /**
   * Carries mail-client changes to the spool (through AMI when configured). Absent: the files are
   * changed directly under the lock mode the settings give, with no VoiceMailMain check.
   */
  readonly spoolChanger?: SpoolChanger;
  /** Makes MP3 and WAV attachments (SoxTranscoder); absent: recordings are attached as they are. */
  readonly audio?: Converter;
  /** The installation-wide deletion breaker; absent: only the per-mailbox safety stop. */
  readonly breaker?: DeleteBreaker;
  /** Told once when this reconcile's deletions opened the breaker (the admins are alerted). */
  readonly onBreakerOpened?: (state: BreakerState, mailbox: string) => Promise<void>;
  /** The transcription stage (src/transcribe/); absent: no email carries a transcript. */
  readonly transcriber?: EmailTranscriber;
}

export interface ReconcileOptions {
  /** Plan only; change nothing. */
  readonly dryRun?: boolean;
  /** Called after each op is applied (progress output, tests). */
  readonly onOp?: (op: Op) => void;
}

export interface ReconcileResult {
  readonly plan: Plan;
  readonly applied: number;
  readonly skipped: readonly { readonly op: Op; readonly problem: string }[];
  readonly spoolProblems: readonly SpoolProblem[];
  /** Counts after the reconcile, from the spool (the source of MWI); absent on a dry run. */
  readonly spoolTotal: number;
  /**
   * MWI counts of the spool as the whole plan left it (re-read when the plan changed the spool).
   * Absent on a dry run, and when that re-read did not settle: unknown is not zero.
   */
  readonly counts?: MwiCounts;
  /** Where the time went, in milliseconds: reading the spool, looking at IMAP, planning, applying. */
  readonly phases: ReconcilePhases;
}

export interface ReconcilePhases {
  spoolMs: number;
  imapMs: number;
  planMs: number;
  applyMs: number;
}

export async function reconcileMailbox(deps: ReconcileDeps, box: BoxInfo, opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  const { settings, state } = deps;
  const log = deps.log.child({ mailbox: mailboxKey(box.ref) });
  const phases: ReconcilePhases = { spoolMs: 0, imapMs: 0, planMs: 0, applyMs: 0 };
  let mark = performance.now();
  const lap = (phase: keyof ReconcilePhases): void => {
    const now = performance.now();
    phases[phase] += Math.round((now - mark) * 10) / 10;
    mark = now;
  };
  const snapshot = await readMailbox(deps.spoolDir, box.ref);
  lap('spoolMs');
  // A view taken while Asterisk was moving files could miss a message and make it look deleted.
  if (!snapshot.settled) throw new SpoolBusyError(mailboxKey(box.ref));
  for (const p of snapshot.problems) log.warn({ file: p.path, problem: p.problem }, 'spool file skipped');
  for (const w of snapshot.warnings ?? []) {
    if (isNewFinding(w.path, w.problem)) log.warn({ file: w.path, problem: w.problem }, 'spool file partly read; the rest of it is used');
  }

  const messages = new Map<string, SpoolMessage>();
  const spool = new Map<string, SpoolSide[]>();
  for (const m of snapshot.messages) {
    if (!isSyncedSpoolFolder(m.folder)) continue;
    const list = spool.get(m.id) ?? [];
    list.push({ folder: m.folder });
    spool.set(m.id, list);
    if (!messages.has(m.id)) messages.set(m.id, m);
  }

  return deps.imap.withClient(box.account, async (client, caps) => {
    // The records (Redis) load while IMAP is looked at: neither waits for the other's round trips.
    const loading = state.load(box.ref);
    loading.catch(() => undefined); // seen below; not an unhandled rejection if IMAP fails first
    const recordedAccount = state.account(box.ref);
    recordedAccount.catch(() => undefined);
    const paths = await rolePaths(client, settings.imap.folders);
    let observed = await observeImap(client, box.ref, paths, settings.email.messageIdDomain);
    const { records, dropped } = await loading;
    const account = accountKey(box.account);
    const lastAccount = await recordedAccount;
    const accountChanged = lastAccount !== undefined && lastAccount !== account && records.size > 0
      ? `the records were made with IMAP account ${lastAccount}, not ${account} (run 'vmbridge sync --mailbox ${mailboxKey(box.ref)} --accept-account' if the change is meant)`
      : undefined;
    lap('imapMs');
    if (dropped.length > 0) log.warn({ ids: dropped }, 'unreadable sync records dropped; they are re-learnt from both sides');
    for (const a of adoptLegacyIds(messages.values(), observed.copies, records)) {
      if (opts.dryRun || !a.hadLegacyRecord) continue;
      if (a.record) await state.put(box.ref, a.to, a.record);
      await state.remove(box.ref, a.from);
      log.info({ from: a.from, to: a.to }, 'Asterisk gave an old voicemail a msg_id; its email keeps its place');
    }

    const planFor = (seen: typeof observed): Plan => plan({
      spool,
      imap: seen.copies,
      records,
      uidValidity: seen.uidValidity,
      options: { imapToSpool: settings.sync.imapToSpool, ...(accountChanged ? { imapReplaced: accountChanged } : {}) },
    });
    let thePlan = planFor(observed);
    if (thePlan.ops.some((op) => op.kind === 'delete-voicemail')) {
      // Folders are read one after the other: an email the user moved between two of them at
      // that moment (Work back to INBOX, say) can be missed in both and look deleted. A voicemail
      // is only deleted if a second look agrees. It lists the folders again too: one the user has
      // just made (and filed the email into) is not in the listing the first look used.
      observed = await observeImap(client, box.ref, paths, settings.email.messageIdDomain, { relist: true });
      thePlan = planFor(observed);
    }
    logHeld(log, thePlan.held, mailboxKey(box.ref));
    checkSafety(thePlan, spool.size, observed.copies.size, settings, mailboxKey(box.ref));
    lap('planMs');
    if (opts.dryRun || thePlan.ops.length === 0) {
      if (!opts.dryRun && !accountChanged && lastAccount !== account) await state.setAccount(box.ref, account);
      if (!opts.dryRun) await deps.watch?.afterReconcile({ client, caps, box, inboxPath: paths.inbox, counts: mwiCounts(snapshot), appended: 0, waiting: 0 });
      lap('applyMs');
      return { plan: thePlan, applied: 0, skipped: [], spoolProblems: snapshot.problems, spoolTotal: spool.size, phases, ...(opts.dryRun ? {} : { counts: mwiCounts(snapshot) }) };
    }

    const identity = (id: string): Identity => ({ ref: box.ref, id, domain: settings.email.messageIdDomain });
    // A caller in VoiceMailMain holds message numbers in memory, and without AMI vmbridge cannot
    // tell whether one is there: then no spool change at all. Only those wait: new emails, email
    // flags and the lamps go on, and the reconcile ends with the retriable error so the spool
    // changes are tried again.
    const spoolOps = thePlan.ops.some((op) => op.kind === 'move-voicemail' || op.kind === 'delete-voicemail');
    const changer = spoolOps ? (deps.spoolChanger ?? new SpoolChanger({ spoolDir: deps.spoolDir, lockmode: await spoolLockmode(settings) })) : undefined;
    let deferred: SpoolChangeDeferredError | undefined;
    if (changer) {
      try {
        await changer.assertNotInVoiceMailMain(box.ref);
      } catch (err) {
        if (!(err instanceof SpoolChangeDeferredError)) throw err;
        deferred = err;
      }
    }
    const skipped: { op: Op; problem: string }[] = [];
    // Deletions are counted against the installation-wide breaker before any is made; an extra
    // copy of vmbridge's own email (duplicate-email) is no one's voicemail and does not count.
    const deletes = (op: Op): boolean => (op.kind === 'delete-voicemail' || op.kind === 'delete-email') && op.reason !== 'duplicate-email';
    let breakerHeld: BreakerState | undefined;
    const planned = thePlan.ops.filter(deletes).length;
    if (deps.breaker && planned > 0) {
      const r = await deps.breaker.reserve(planned);
      if (!r.ok) {
        breakerHeld = r.state;
        log.warn({ deletions: planned, breakerSince: r.state.since }, 'deletions held: the deletion breaker is open');
        if (r.opened) await deps.onBreakerOpened?.(r.state, mailboxKey(box.ref));
      }
    }
    let applied = 0;
    let appended = 0;
    let refused: unknown;
    // Emails are built one step ahead, so reading audio and composing the next one overlaps the
    // APPEND of this one.
    // Email changes first, spool changes last: a spool change renumbers files, and the emails still
    // to be built read their recordings by the paths this snapshot saw.
    const touchesSpool = (op: Op): boolean => op.kind === 'move-voicemail' || op.kind === 'delete-voicemail';
    const ordered = [...thePlan.ops.filter((op) => !touchesSpool(op)), ...thePlan.ops.filter(touchesSpool)];
    const emails = new EmailPipeline(ordered, (op) => {
      const message = messages.get(op.id);
      if (!message) throw new Error(`plan asked to append ${op.id}, which the spool snapshot does not hold`);
      return buildEmail(deps, box, message, log);
    });
    for (const op of ordered) {
      if (breakerHeld && deletes(op)) {
        skipped.push({ op, problem: `held: the deletion breaker is open since ${breakerHeld.since} (vmbridge sync --release-deletes)` });
        continue;
      }
      if (deferred && touchesSpool(op)) {
        skipped.push({ op, problem: `deferred: ${deferred.message}` });
        continue;
      }
      switch (op.kind) {
        case 'append': {
          if (refused !== undefined) {
            // The server said the mailbox is full: the rest waits in the spool for the retry.
            skipped.push({ op, problem: 'not tried: the mailbox is over quota' });
            continue;
          }
          const built = await emails.take(op);
          if ('problem' in built) {
            // One unreadable message must not hold up the rest of the mailbox.
            log.warn({ file: built.file, problem: built.problem }, 'voicemail not turned into an email');
            skipped.push({ op, problem: built.problem });
            continue;
          }
          const role = placementWish(op.folder).role;
          const at = await appendEmail(client, paths[role], built.raw, initialFlags(op.folder), identity(op.id)).catch((err: unknown) => {
            if (!isOverQuotaError(err)) throw err;
            refused = err;
            return undefined;
          });
          if (!at) {
            skipped.push({ op, problem: `refused for quota: ${refusalText(refused)}` });
            continue;
          }
          appended++;
          const count = explainedCount(client, paths[role]);
          if (count !== undefined) noteOwnCount(accountKey(box.account), paths[role], count);
          noteOwnAppend(accountKey(box.account), paths[role], at.uid);
          await state.put(box.ref, op.id, { folder: op.folder, role, uid: at.uid, uidValidity: at.uidValidity });
          log.info({ id: op.id, folder: op.folder, uid: at.uid, reason: op.reason }, 'email appended');
          break;
        }
        case 'update-email': {
          const at = await updateEmail(client, caps, paths[op.from], op.uid, paths[op.to], op.seen, op.flagged, identity(op.id));
          await state.put(box.ref, op.id, { folder: op.folder, role: op.to, uid: at.uid, uidValidity: at.uidValidity });
          log.info({ id: op.id, folder: op.folder, uid: at.uid, reason: op.reason }, 'email updated');
          break;
        }
        case 'delete-email': {
          const { expunged, how, trash, fallback } = await deleteEmail(client, caps, paths[op.role], op.uid, settings.imap);
          if (op.reason !== 'duplicate-email') await state.remove(box.ref, op.id);
          if (!expunged) {
            log.warn({ id: op.id, uid: op.uid, reason: op.reason, how, fallback }, 'email left flagged \\Deleted: no UID EXPUNGE or MOVE to the trash here (a bare EXPUNGE would also remove the user\'s own deleted mail)');
          } else {
            log.info({ id: op.id, uid: op.uid, reason: op.reason, how, trash, fallback }, 'email deleted');
          }
          break;
        }
        case 'record':
          await state.put(box.ref, op.id, op.record);
          break;
        case 'forget':
          await state.remove(box.ref, op.id);
          break;
        case 'move-voicemail': {
          const outcome = await changer!.move(box, op.id, op.from, op.to);
          if (!outcome.done) {
            // Not forced: Asterisk refuses a full folder too. The email stays where the user put
            // it, and the move is tried again at the next reconcile of this mailbox.
            log.warn({ id: op.id, from: op.from, to: op.to, problem: outcome.problem }, 'voicemail not moved: the folder is full');
            skipped.push({ op, problem: outcome.problem });
            continue;
          }
          await state.put(box.ref, op.id, { folder: op.to, role: op.email.role, uid: op.email.uid, uidValidity: observed.uidValidity[op.email.role] ?? '' });
          log.info({ id: op.id, from: op.from, to: op.to, via: outcome.via, alreadyDone: outcome.alreadyDone, repairs: outcome.repairs.length ? outcome.repairs : undefined, reason: op.reason }, 'voicemail moved');
          break;
        }
        case 'delete-voicemail': {
          const outcome = await changer!.remove(box, op.id, op.folder);
          if (!outcome.done) {
            skipped.push({ op, problem: outcome.problem });
            continue;
          }
          await state.remove(box.ref, op.id);
          log.info({ id: op.id, folder: op.folder, via: outcome.via, alreadyDone: outcome.alreadyDone, backupDeleted: box.backupDeleted ?? 0, repairs: outcome.repairs.length ? outcome.repairs : undefined, reason: op.reason }, 'voicemail removed');
          break;
        }
      }
      applied++;
      opts.onOp?.(op);
    }
    const counts = await finalCounts(deps.spoolDir, snapshot, thePlan.ops, log);
    await deps.watch?.afterReconcile({ client, caps, box, inboxPath: paths.inbox, counts, appended, waiting: skipped.filter((s) => s.op.kind === 'append').length, refused });
    lap('applyMs');
    if (!accountChanged && lastAccount !== account) await state.setAccount(box.ref, account);
    // What could be done is done; the spool changes are retried (and the lamps follow the spool meanwhile).
    if (deferred) throw deferred;
    return { plan: thePlan, applied, skipped, spoolProblems: snapshot.problems, spoolTotal: spool.size, phases, ...(counts ? { counts } : {}) };
  });
}

export type Built = { raw: Buffer } | { problem: string; file: string };

export async function buildEmail(deps: ReconcileDeps, box: BoxInfo, message: SpoolMessage, log: Logger): Promise<Built> {
  const { settings } = deps;
  const readAudio = (path: string): Promise<Buffer> => readSpoolFile(deps.spoolDir, path);
  // Under way while the attachments are made; it never rejects and waits at most its budget.
  const transcribing = deps.transcriber?.forEmail(box.ref, message, readAudio, log);
  try {
    let attachments: PreparedAttachment[] | undefined;
    if (box.attachments) {
      const prepared = await prepareAttachments(box.attachments, message, readAudio, deps.audio);
      for (const w of prepared.warnings) log.warn({ file: w.file, problem: w.problem }, 'recording not converted');
      attachments = prepared.attachments;
    }
    const transcript = await transcribing;
    const raw = await buildVoicemailEmail({
      ref: box.ref,
      message,
      owner: box.owner,
      timezone: box.timezone,
      from: settings.email.from,
      serverName: settings.email.serverName,
      messageIdDomain: settings.email.messageIdDomain,
      readAudio,
      ...(attachments ? { attachments } : {}),
      ...(box.emailLook ? { look: box.emailLook, hostname: hostname() } : {}),
      ...(transcript ? { transcript } : {}),
      onTemplateProblem: (problems) => {
        for (const p of problems) {
          if (isNewFinding(`email template: ${p}`, 'reported')) log.warn({ mailbox: mailboxKey(box.ref), uses: p }, 'voicemail.conf email template uses what vmbridge cannot evaluate; it is left out');
        }
      },
    });
    return { raw };
  } catch (err) {
    if (!(err instanceof SpoolError) && !isFsError(err)) throw err;
    return { problem: err instanceof Error ? err.message : String(err), file: message.txtPath };
  }
}

/** Builds the emails of a plan's appends in order, keeping the next one under way. */
class EmailPipeline {
  private readonly following = new Map<Op, Op>();
  private readonly started = new Map<Op, Promise<Built>>();

  constructor(ops: readonly Op[], private readonly build: (op: Op) => Promise<Built>) {
    const appends = ops.filter((op) => op.kind === 'append');
    appends.forEach((op, i) => {
      const next = appends[i + 1];
      if (next) this.following.set(op, next);
    });
  }

  take(op: Op): Promise<Built> {
    const result = this.start(op);
    this.started.delete(op);
    const ahead = this.following.get(op);
    if (ahead) this.start(ahead).catch(() => undefined); // its error is seen when it is taken
    return result;
  }

  private start(op: Op): Promise<Built> {
    let p = this.started.get(op);
    if (!p) this.started.set(op, (p = this.build(op)));
    return p;
  }
}

/**
 * A plan that would delete a large share of a mailbox is more likely a wrong account, a wrong spool
 * path or an emptied folder than a user's wish: stop and report instead.
 */
export function checkSafety(p: Plan, spoolTotal: number, imapTotal: number, settings: Settings, what: string): void {
  const { emails, voicemails } = countDeletions(p);
  const { maxDeleteShare, maxDeleteFloor } = settings.sync;
  const tooMany = (n: number, total: number): boolean => n > maxDeleteFloor && n > total * maxDeleteShare;
  if (tooMany(emails, imapTotal)) {
    throw new SafetyStopError(`${what}: the plan would delete ${emails} of ${imapTotal} voicemail emails (limit sync.maxDeleteShare=${maxDeleteShare}, sync.maxDeleteFloor=${maxDeleteFloor}); nothing was changed. Check spool.dir and the IMAP account, then run 'vmbridge sync --mailbox ${what} --dry-run'.`);
  }
  if (tooMany(voicemails, spoolTotal)) {
    throw new SafetyStopError(`${what}: the plan would delete ${voicemails} of ${spoolTotal} voicemails (limit sync.maxDeleteShare=${maxDeleteShare}, sync.maxDeleteFloor=${maxDeleteFloor}); nothing was changed.`);
  }
}

/**
 * MWI counts after the whole plan: the snapshot's when no op touched the spool, else a fresh read.
 * A fresh read that does not settle gives no counts (MWI is never published from a guess).
 */
async function finalCounts(spoolDir: string, snapshot: SpoolSnapshot, ops: readonly Op[], log: Logger): Promise<MwiCounts | undefined> {
  if (!ops.some((op) => op.kind === 'move-voicemail' || op.kind === 'delete-voicemail')) return mwiCounts(snapshot);
  const after = await readMailbox(spoolDir, snapshot.ref);
  if (after.settled) return mwiCounts(after);
  log.info('spool still changing after the plan; MWI waits for the next reconcile');
  return undefined;
}

function logHeld(log: Logger, held: readonly Held[], mailbox: string): void {
  for (const h of held) log.debug({ id: h.id, reason: h.reason, detail: h.detail }, 'held');
  // The admin must hear of this one: the mailbox's emails are out of sight and nothing is deleted until it is fixed.
  const replaced = held.filter((h) => h.reason === 'imap-replaced');
  if (replaced.length > 0 && isNewFinding(`imap-replaced ${mailbox}`, replaced.map((h) => h.id).join(','))) {
    log.warn({ voicemails: replaced.length, detail: replaced[0]!.detail }, 'IMAP side looks replaced (folder missing or recreated, another account or mapping): deletions held, both sides kept; check the account and imap.folders');
  }
}

function isFsError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' && (err as { syscall?: unknown }).syscall !== undefined;
}
