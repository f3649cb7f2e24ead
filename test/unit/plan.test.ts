import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SYNCED_SPOOL_FOLDERS, type SyncedSpoolFolder } from '../../src/spool/types.js';
import { IMAP_ROLES, spoolFolderOf, type ImapRole } from '../../src/sync/placement.js';
import { countDeletions, plan, type Op, type SpoolSide, type SyncRecord } from '../../src/sync/plan.js';
import { applyOp, cloneWorld, planInput, UIDVALIDITY, type ModelEmail, type World } from '../support/plan-model.js';

function world(parts: Partial<World>): World {
  return { spool: new Map(), emails: [], records: new Map(), nextUid: 100, ...parts };
}
const rec = (folder: SyncedSpoolFolder, role: ImapRole, uid: number): SyncRecord => ({ folder, role, uid, uidValidity: UIDVALIDITY });
const email = (id: string, role: ImapRole, uid: number, seen = false, flagged = false): ModelEmail => ({ id, role, uid, seen, flagged });
const kinds = (ops: readonly Op[]) => ops.map((o) => `${o.kind}:${o.reason}`);

describe('plan: decision table, one test per row', () => {
  it('new-on-phone: voicemail with no email and no record is appended to its folder', () => {
    const p = plan(planInput(world({ spool: new Map([['m1', [{ folder: 'Urgent' }]]]) }), false));
    assert.deepEqual(p.ops, [{ kind: 'append', id: 'm1', folder: 'Urgent', reason: 'new-on-phone' }]);
  });

  it('adopt: both sides agree and no record -> record only', () => {
    const w = world({ spool: new Map([['m1', [{ folder: 'Old' }]]]), emails: [email('m1', 'inbox', 5, true)] });
    assert.deepEqual(plan(planInput(w, false)).ops, [
      { kind: 'record', id: 'm1', record: rec('Old', 'inbox', 5), reason: 'adopt' },
    ]);
  });

  it('adopt: both sides disagree and no record -> the phone wins, nothing deleted', () => {
    const w = world({ spool: new Map([['m1', [{ folder: 'Work' }]]]), emails: [email('m1', 'inbox', 5)] });
    const p = plan(planInput(w, true));
    assert.deepEqual(kinds(p.ops), ['update-email:adopt']);
    const op = p.ops[0];
    assert.ok(op?.kind === 'update-email');
    assert.equal(op.to, 'work');
    assert.equal(op.seen, true, 'filed from the inbox means heard');
  });

  it('in-step: nothing to do when record and both sides agree', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [email('m1', 'inbox', 5)],
      records: new Map([['m1', rec('INBOX', 'inbox', 5)]]),
    });
    assert.deepEqual(plan(planInput(w, true)), { ops: [], held: [] });
  });

  it('in-step: a stale UID in the record (UIDVALIDITY change, re-matched by identity) is refreshed', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [email('m1', 'inbox', 1)],
      records: new Map([['m1', { ...rec('INBOX', 'inbox', 77), uidValidity: '1' }]]),
    });
    assert.deepEqual(plan(planInput(w, false)).ops, [{ kind: 'record', id: 'm1', record: rec('INBOX', 'inbox', 1), reason: 'in-step' }]);
  });

  for (const [from, to, expect] of [
    ['INBOX', 'Old', { to: 'inbox', seen: true, flagged: undefined }],
    ['INBOX', 'Urgent', { to: 'inbox', seen: undefined, flagged: true }],
    ['Urgent', 'Old', { to: 'inbox', seen: true, flagged: undefined }],
    ['Old', 'INBOX', { to: 'inbox', seen: false, flagged: undefined }],
    ['INBOX', 'Work', { to: 'work', seen: true, flagged: undefined }],
    ['Old', 'Family', { to: 'family', seen: undefined, flagged: undefined }],
    ['Work', 'Friends', { to: 'friends', seen: undefined, flagged: undefined }],
  ] as const) {
    it(`changed-on-phone: ${from} -> ${to} moves/flags the email`, () => {
      const start = spoolFolderOf({ role: roleOf(from), seen: from === 'Old', flagged: from === 'Urgent' });
      assert.equal(start, from);
      const w = world({
        spool: new Map([['m1', [{ folder: to }]]]),
        emails: [email('m1', roleOf(from), 5, from === 'Old', from === 'Urgent')],
        records: new Map([['m1', rec(from, roleOf(from), 5)]]),
      });
      const p = plan(planInput(w, false));
      assert.equal(p.ops.length, 1);
      const op = p.ops[0]!;
      assert.equal(op.kind, 'update-email');
      assert.ok(op.kind === 'update-email');
      assert.equal(op.reason, 'changed-on-phone');
      assert.deepEqual({ to: op.to, seen: op.seen, flagged: op.flagged }, expect);
    });
  }

  it('changed-in-mail: read in the mail client -> spool move when imapToSpool, held otherwise', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [email('m1', 'inbox', 5, true)],
      records: new Map([['m1', rec('INBOX', 'inbox', 5)]]),
    });
    assert.deepEqual(kinds(plan(planInput(w, true)).ops), ['move-voicemail:changed-in-mail']);
    const held = plan(planInput(w, false));
    assert.deepEqual(held.ops, []);
    assert.deepEqual(held.held.map((h) => h.reason), ['changed-in-mail']);
  });

  it('changed-on-both: same change on both sides -> record only', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'Old' }]]]),
      emails: [email('m1', 'inbox', 5, true)],
      records: new Map([['m1', rec('INBOX', 'inbox', 5)]]),
    });
    assert.deepEqual(kinds(plan(planInput(w, true)).ops), ['record:changed-on-both']);
  });

  it('changed-on-both: different changes -> the phone wins', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'Family' }]]]),
      emails: [email('m1', 'work', 5, true)],
      records: new Map([['m1', rec('INBOX', 'inbox', 3)]]),
    });
    const p = plan(planInput(w, true));
    assert.deepEqual(kinds(p.ops), ['update-email:changed-on-both']);
    assert.ok(p.ops[0]?.kind === 'update-email' && p.ops[0].to === 'family');
  });

  it('deleted-in-mail: email gone with a record -> voicemail removed when imapToSpool, held (never re-appended) otherwise', () => {
    const w = world({ spool: new Map([['m1', [{ folder: 'Old' }]]]), records: new Map([['m1', rec('Old', 'inbox', 5)]]) });
    assert.deepEqual(plan(planInput(w, true)).ops, [{ kind: 'delete-voicemail', id: 'm1', folder: 'Old', reason: 'deleted-in-mail' }]);
    const p = plan(planInput(w, false));
    assert.deepEqual(p.ops, []);
    assert.deepEqual(p.held.map((h) => h.reason), ['deleted-in-mail']);
  });

  it('imap-replaced: the email gone from a folder that is missing or has another UIDVALIDITY -> held, nothing deleted', () => {
    const w = world({ spool: new Map([['m1', [{ folder: 'Work' }]], ['m2', [{ folder: 'Old' }]]]), records: new Map([['m1', rec('Work', 'work', 5)], ['m2', rec('Old', 'inbox', 6)]]) });
    const missing = planInput(w, true);
    const noWork = plan({ ...missing, uidValidity: { ...missing.uidValidity, work: undefined } });
    assert.deepEqual(kinds(noWork.ops), ['delete-voicemail:deleted-in-mail'], 'm2: its INBOX is the one recorded, so that deletion is real');
    assert.deepEqual(noWork.held.map((h) => `${h.id}:${h.reason}`), ['m1:imap-replaced']);
    assert.match(noWork.held[0]!.detail, /folder is missing/);
    const recreated = plan({ ...missing, uidValidity: { ...missing.uidValidity, inbox: '999', work: '998' } });
    assert.deepEqual(recreated.ops, [], 'another account or a recreated folder: nothing deleted');
    assert.deepEqual(recreated.held.map((h) => h.reason).sort(), ['imap-replaced', 'imap-replaced']);
    assert.match(recreated.held.find((h) => h.id === 'm2')!.detail, /UIDVALIDITY 999, not/);
  });

  it('a record made before UIDVALIDITY was recorded still lets a real deletion through', () => {
    const w = world({ spool: new Map([['m1', [{ folder: 'Old' }]]]), records: new Map([['m1', { ...rec('Old', 'inbox', 5), uidValidity: '' }]]) });
    assert.deepEqual(kinds(plan(planInput(w, true)).ops), ['delete-voicemail:deleted-in-mail']);
  });

  it('deleted-on-phone: voicemail gone with a record -> delete exactly that email UID', () => {
    const w = world({ emails: [email('m1', 'work', 9)], records: new Map([['m1', rec('Work', 'work', 9)]]) });
    assert.deepEqual(plan(planInput(w, false)).ops, [{ kind: 'delete-email', id: 'm1', uid: 9, role: 'work', reason: 'deleted-on-phone' }]);
  });

  it('orphan-email: an email with no voicemail and no record is never destroyed', () => {
    const w = world({ emails: [email('m1', 'inbox', 9)] });
    const p = plan(planInput(w, true));
    assert.deepEqual(p.ops, []);
    assert.deepEqual(p.held.map((h) => h.reason), ['orphan-email']);
  });

  it('gone-on-both: forget the record', () => {
    const w = world({ records: new Map([['m1', rec('Old', 'inbox', 5)]]) });
    assert.deepEqual(plan(planInput(w, true)).ops, [{ kind: 'forget', id: 'm1', reason: 'gone-on-both' }]);
  });

  it('spool-in-flux: an id in two spool folders at once is left alone this round', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }, { folder: 'Old' }]]]),
      emails: [email('m1', 'inbox', 5)],
      records: new Map([['m1', rec('INBOX', 'inbox', 5)]]),
    });
    const p = plan(planInput(w, true));
    assert.deepEqual(p.ops, []);
    assert.deepEqual(p.held.map((h) => h.reason), ['spool-in-flux']);
  });

  it('duplicate-email: a second copy in the same folder is expunged; the recorded one stays', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [email('m1', 'inbox', 4), email('m1', 'inbox', 5)],
      records: new Map([['m1', rec('INBOX', 'inbox', 5)]]),
    });
    assert.deepEqual(plan(planInput(w, false)).ops, [{ kind: 'delete-email', id: 'm1', uid: 4, role: 'inbox', reason: 'duplicate-email' }]);
  });

  it('duplicate-email: of a pending copy and its replacement, the replacement stays even where the record points at the pending one', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'Old' }]]]),
      emails: [{ ...email('m1', 'inbox', 4, true, true), pending: true }, email('m1', 'inbox', 9, true, true)],
      records: new Map([['m1', rec('Old', 'inbox', 4)]]),
    });
    assert.deepEqual(plan(planInput(w, true)).ops, [
      { kind: 'delete-email', id: 'm1', uid: 4, role: 'inbox', reason: 'duplicate-email' },
      { kind: 'record', id: 'm1', record: rec('Old', 'inbox', 9), reason: 'in-step' },
    ]);
  });

  it('duplicate-email: a pending copy left in another folder than its replacement goes too; a pending copy alone stays', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'Work' }]]]),
      emails: [{ ...email('m1', 'inbox', 4), pending: true }, email('m1', 'work', 9)],
      records: new Map([['m1', rec('Work', 'work', 9)]]),
    });
    assert.deepEqual(plan(planInput(w, true)).ops, [{ kind: 'delete-email', id: 'm1', uid: 4, role: 'inbox', reason: 'duplicate-email' }]);
    const alone = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [{ ...email('m1', 'inbox', 4), pending: true }],
      records: new Map([['m1', rec('INBOX', 'inbox', 4)]]),
    });
    assert.deepEqual(plan(planInput(alone, true)), { ops: [], held: [] });
  });

  it('a copy the user filed in another mapped folder is left alone', () => {
    const w = world({
      spool: new Map([['m1', [{ folder: 'INBOX' }]]]),
      emails: [email('m1', 'inbox', 4), email('m1', 'work', 5)],
      records: new Map([['m1', rec('INBOX', 'inbox', 4)]]),
    });
    assert.deepEqual(plan(planInput(w, true)), { ops: [], held: [] });
  });

  it('countDeletions ignores duplicate clean-up', () => {
    const p = plan(planInput(world({
      emails: [email('a', 'inbox', 1), email('a', 'inbox', 2), email('b', 'inbox', 3)],
      records: new Map([['b', rec('INBOX', 'inbox', 3)], ['a', rec('INBOX', 'inbox', 1)]]),
      spool: new Map([['a', [{ folder: 'INBOX' }]]]),
    }), true));
    assert.deepEqual(countDeletions(p), { emails: 1, voicemails: 0 });
  });
});

function roleOf(f: SyncedSpoolFolder): ImapRole {
  return f === 'Work' ? 'work' : f === 'Family' ? 'family' : f === 'Friends' ? 'friends' : 'inbox';
}

// ---- properties over generated worlds -------------------------------------------------------

const folderArb = fc.constantFrom(...SYNCED_SPOOL_FOLDERS);
const roleArb = fc.constantFrom(...IMAP_ROLES);
const idArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');

const worldArb: fc.Arbitrary<World> = fc
  .record({
    spool: fc.dictionary(idArb, fc.oneof(
      { weight: 8, arbitrary: folderArb.map((f) => [{ folder: f }]) },
      { weight: 1, arbitrary: fc.tuple(folderArb, folderArb).map(([f, g]) => [{ folder: f }, { folder: g }]) },
    )),
    emails: fc.array(fc.record({ id: idArb, role: roleArb, seen: fc.boolean(), flagged: fc.boolean() }), { maxLength: 10 }),
    records: fc.dictionary(idArb, fc.record({ folder: folderArb, role: roleArb, uidSlot: fc.nat(12) })),
  })
  .map(({ spool, emails, records }) => {
    const placed = emails.map((e, i) => ({ ...e, uid: i + 1 }));
    return {
      spool: new Map(Object.entries(spool).map(([k, v]) => [k, v as SpoolSide[]])),
      emails: placed,
      records: new Map(Object.entries(records).map(([k, r]) => [k, rec(r.folder, r.role, r.uidSlot + 1)])),
      nextUid: 100,
    };
  });

function applyPlan(w: World, imapToSpool: boolean): { after: World; ops: readonly Op[] } {
  const after = cloneWorld(w);
  const p = plan(planInput(after, imapToSpool));
  for (const op of p.ops) applyOp(after, op);
  return { after, ops: p.ops };
}

describe('plan: properties', () => {
  for (const imapToSpool of [false, true]) {
    it(`is idempotent: planning again after applying yields nothing (imapToSpool=${imapToSpool})`, () => {
      fc.assert(fc.property(worldArb, (w) => {
        const { after } = applyPlan(w, imapToSpool);
        assert.deepEqual(plan(planInput(after, imapToSpool)).ops, []);
      }), { numRuns: 2000 });
    });

    it(`never plans to drop a message either side still wants (imapToSpool=${imapToSpool})`, () => {
      fc.assert(fc.property(worldArb, (w) => {
        const { ops } = applyPlan(w, imapToSpool);
        for (const op of ops) {
          if (op.kind === 'delete-voicemail') {
            assert.ok(imapToSpool, 'spool untouched without imapToSpool');
            assert.ok(w.records.has(op.id), 'only with history');
            assert.equal(w.emails.filter((e) => e.id === op.id).length, 0, 'only when the email is gone');
          }
          if (op.kind === 'move-voicemail') assert.ok(imapToSpool);
          if (op.kind === 'delete-email' && op.reason !== 'duplicate-email') {
            assert.ok(w.records.has(op.id), 'only with history');
            assert.equal(w.spool.has(op.id), false, 'only when the voicemail is gone');
          }
          if (op.kind === 'delete-email' && op.reason === 'duplicate-email') {
            const copies = w.emails.filter((e) => e.id === op.id);
            const target = copies.find((e) => e.uid === op.uid)!;
            assert.ok(target, 'a duplicate is a live copy');
            assert.ok(copies.length >= 2, 'a duplicate has a twin');
          }
        }
      }), { numRuns: 2000 });
    });
  }

  it('converges: after one pass every single-copy voicemail is in IMAP in the folder it means, or held as deleted-in-mail', () => {
    fc.assert(fc.property(worldArb, fc.boolean(), (w, imapToSpool) => {
      const { after } = applyPlan(w, imapToSpool);
      const p2 = plan(planInput(after, imapToSpool));
      for (const [id, copies] of after.spool) {
        if (copies.length !== 1) continue;
        const emails = after.emails.filter((e) => e.id === id);
        const record = after.records.get(id);
        if (emails.length === 0) {
          assert.ok(record, `${id}: a voicemail without an email must be one the user deleted in mail`);
          assert.ok(p2.held.some((h) => h.id === id && h.reason === 'deleted-in-mail'));
          continue;
        }
        assert.ok(record, `${id}: a record once both sides have it`);
        const agreed = emails.some((e) => spoolFolderOf(e) === copies[0]!.folder);
        if (agreed && imapToSpool) {
          assert.ok(emails.some((e) => e.uid === record.uid && e.role === record.role), `${id}: the record points at a live email`);
        }
        if (imapToSpool) assert.ok(agreed, `${id}: both sides agree`);
        else assert.ok(agreed || p2.held.some((h) => h.id === id && h.reason === 'changed-in-mail'));
      }
    }), { numRuns: 2000 });
  });
});
