/**
 * A mail client that acts on a voicemail's email right after vmbridge APPENDed it (a filter rule
 * on new mail, say), on real Dovecot and Redis. Dovecot tells an IDLE session of another session's
 * change about half a second after it, so an email moved, read or deleted sooner comes and goes
 * between two of the session's syncs and the session is told nothing. vmbridge looks once more
 * after every APPEND of its own (src/imap/idle-watcher.ts, FOLLOW_UP_MS), so every such change
 * still reaches the spool and the lamp without the sweep (off here, as is push).
 *
 * The action starts the given number of milliseconds after vmbridge's APPEND returned its UID
 * (heard in this process through onOwnAppend, the hook the IDLE watcher uses). The lamp is what
 * the owning Asterisk (the AMI test server on the same spool) publishes after VoicemailRefresh.
 * The delays measured are printed; the test asserts the outcome, not the time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onOwnAppend } from '../../src/imap/own-echoes.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, userOf, type Harness } from '../support/harness.js';
import { startOwnerLamp, type OwnerLamp } from '../support/owner-lamp.js';
import type { MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DELAYS_MS = [0, 50, 200, 400, 600] as const;
const ACTIONS = ['seen', 'work', 'trash', 'expunge'] as const;
type Action = (typeof ACTIONS)[number];
/** With the sweep off only IDLE and the follow-up look can carry the change; generous for a loaded host. */
const HEARD = { timeoutMs: 15_000, intervalMs: 20 };
const FOLDERS: readonly SpoolFolder[] = ['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends', 'Deleted'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One mailbox per case, so the lamp's counts are the case's alone. */
const cases = ACTIONS.flatMap((action, a) => DELAYS_MS.map((delay, d) => ({ action, delay, ref: { context: 'default', mailbox: String(6100 + a * 10 + d) } as MailboxRef })));

describe('a change made right after vmbridge APPENDs the email is heard without the sweep', { timeout: 300_000 }, () => {
  let spoolDir: string;
  let h: Harness;
  let ownerLamp: OwnerLamp;
  let service: Service;
  let stopListening: () => void = () => undefined;
  const measured: string[] = [];

  const where = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of FOLDERS) if ((await listFolder(spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-append-race-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    ownerLamp = await startOwnerLamp(spoolDir);
    h = await startHarness({
      boxes: cases.map((c) => ({ mailbox: c.ref.mailbox })),
      confExtra: '[general]\nbackupdeleted=5\n',
      settings: (base) => ({
        ...base,
        spool: { ...(base.spool as object), dir: spoolDir, sweepSeconds: 0 },
        mwi: { targets: [ownerLamp.target], retrySeconds: 1, retryMaxSeconds: 2 },
      }),
    });
    service = await startService(h.settings, h.log);
    // Every account's IDLE session is in its inbox before the first voicemail.
    await sleep(2_000);
  });
  after(async () => {
    stopListening();
    await service?.close();
    await ownerLamp?.close();
    await h?.stop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
    if (measured.length > 0) console.log(`# APPENDUID -> action -> lamp off (ms): ${measured.join('; ')}`);
  });

  for (const { action, delay, ref } of cases) {
    it(`${action} ${delay} ms after APPENDUID: the spool follows and the lamp goes out`, async () => {
      const mc: MailClient = await h.mail(ref);
      if (action === 'work') await mc.client.mailboxCreate('Work').catch(() => undefined);
      if (action === 'trash') await mc.client.mailboxCreate('Trash').catch(() => undefined);
      const lock = await mc.client.getMailboxLock('INBOX');
      const account = userOf(ref);
      let appendedAt = 0;
      let actedAt = 0;
      const acted = new Promise<void>((resolve, reject) => {
        stopListening = onOwnAppend((who, path, uid) => {
          if (who !== account || path !== 'INBOX') return;
          stopListening();
          appendedAt = performance.now();
          const act = async (): Promise<void> => {
            if (delay > 0) await sleep(delay);
            actedAt = performance.now();
            // A client acts on what it was told of: the NOOP takes the new email into its view.
            await mc.client.noop();
            const u = String(uid);
            if (action === 'seen') await mc.client.messageFlagsAdd(u, ['\\Seen'], { uid: true });
            else if (action === 'work') await mc.client.messageMove(u, 'Work', { uid: true });
            else if (action === 'trash') await mc.client.messageMove(u, 'Trash', { uid: true });
            else await mc.client.messageDelete(u, { uid: true });
          };
          act().then(resolve, reject);
        });
      });
      try {
        const left = await leaveVoicemail(spoolDir, ref, { callerid: `"Filter ${action}" <555${delay}>`, duration: 2 });
        await acted;
        const want: Record<Action, readonly SpoolFolder[]> = { seen: ['Old'], work: ['Work'], trash: ['Deleted'], expunge: ['Deleted'] };
        await waitFor(`${ref.mailbox}: ${left.msgId} in ${want[action].join('+')}`, async () => {
          const w = await where(ref, left.msgId);
          return w.length === want[action].length && w.every((f, i) => f === want[action][i]) ? w : undefined;
        }, HEARD);
        const mailbox = `${ref.mailbox}@${ref.context}`;
        const off = await waitFor(`${mailbox}: the lamp published with no new message after the change`, () => ownerLamp.events.find((l) => l.at > actedAt && l.event.get('Mailbox') === mailbox && l.event.get('New') === '0' && l.event.get('Waiting') === '0'), HEARD);
        measured.push(`${action}@${delay}: ${Math.round(actedAt - appendedAt)} -> ${Math.round(off.at - appendedAt)}`);
        assert.equal(off.event.get('Old'), action === 'seen' ? '1' : '0');
      } finally {
        stopListening();
        lock.release();
      }
    });
  }
});
