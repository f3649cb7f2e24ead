/**
 * A model of both sides that applies plan ops the way the real adapters do, so properties of plan()
 * (convergence, idempotence, no loss) can be checked over many generated worlds.
 */
import type { SyncedSpoolFolder } from '../../src/spool/types.js';
import { initialFlags, placementWish, type ImapRole } from '../../src/sync/placement.js';
import type { ImapSide, Op, PlanInput, SpoolSide, SyncRecord } from '../../src/sync/plan.js';

export interface ModelEmail extends ImapSide {
  readonly id: string;
}

export interface World {
  spool: Map<string, SpoolSide[]>;
  emails: ModelEmail[];
  records: Map<string, SyncRecord>;
  nextUid: number;
}

export const UIDVALIDITY = '7';

export function cloneWorld(w: World): World {
  return {
    spool: new Map([...w.spool].map(([k, v]) => [k, [...v]])),
    emails: w.emails.map((e) => ({ ...e })),
    records: new Map(w.records),
    nextUid: w.nextUid,
  };
}

export function planInput(w: World, imapToSpool: boolean): PlanInput {
  const imap = new Map<string, ImapSide[]>();
  for (const e of w.emails) {
    const list = imap.get(e.id) ?? [];
    list.push({ role: e.role, uid: e.uid, seen: e.seen, flagged: e.flagged, ...(e.pending ? { pending: true } : {}) });
    imap.set(e.id, list);
  }
  return {
    spool: w.spool,
    imap,
    records: w.records,
    uidValidity: { inbox: UIDVALIDITY, work: UIDVALIDITY, family: UIDVALIDITY, friends: UIDVALIDITY },
    options: { imapToSpool },
  };
}

function rec(folder: SyncedSpoolFolder, role: ImapRole, uid: number): SyncRecord {
  return { folder, role, uid, uidValidity: UIDVALIDITY };
}

export function applyOp(w: World, op: Op): void {
  switch (op.kind) {
    case 'append': {
      const role = placementWish(op.folder).role;
      const uid = w.nextUid++;
      w.emails.push({ id: op.id, role, uid, ...initialFlags(op.folder) });
      w.records.set(op.id, rec(op.folder, role, uid));
      return;
    }
    case 'update-email': {
      const email = w.emails.find((e) => e.uid === op.uid);
      if (!email) throw new Error(`update-email: no uid ${op.uid}`);
      const moved = op.to !== op.from;
      const next: ModelEmail = {
        ...email,
        role: op.to,
        uid: moved ? w.nextUid++ : email.uid,
        seen: op.seen ?? email.seen,
        flagged: op.flagged ?? email.flagged,
      };
      w.emails = w.emails.map((e) => (e === email ? next : e));
      w.records.set(op.id, rec(op.folder, next.role, next.uid));
      return;
    }
    case 'delete-email':
      w.emails = w.emails.filter((e) => e.uid !== op.uid);
      if (op.reason !== 'duplicate-email') w.records.delete(op.id);
      return;
    case 'move-voicemail':
      w.spool.set(op.id, [{ folder: op.to }]);
      w.records.set(op.id, rec(op.to, op.email.role, op.email.uid));
      return;
    case 'delete-voicemail':
      w.spool.delete(op.id);
      w.records.delete(op.id);
      return;
    case 'record':
      w.records.set(op.id, op.record);
      return;
    case 'forget':
      w.records.delete(op.id);
      return;
  }
}
