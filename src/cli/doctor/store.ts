/** The voicemail store voicemail.conf names (file spool or ODBC table): reachable, readable, how many mailboxes. */
import { readVoicemailConf, stripSpace } from '../../config/voicemail-conf.js';
import { openStore } from '../../store/open.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

const MAX_LISTED = 10;

export const storeCheck: DoctorCheck = {
  perServer: true,
  name: 'store',
  describes: 'the voicemail store voicemail.conf uses (file spool, or the ODBC table of odbcstorage=) answers: its kind, where it is, how many mailboxes hold voicemail',
  async run(ctx) {
    const section = 'store';
    let odbc = false;
    try {
      odbc = stripSpace((await readVoicemailConf(ctx.settings.spool.voicemailConf)).general['odbcstorage'] ?? '') !== '';
    } catch {
      // voicemail.conf's own check says why it cannot be read.
    }
    // The file spool has its own check above; this one adds the table of ODBC storage.
    if (!odbc) return [{ section, status: 'ok', message: 'file spool (spool.dir): see the spool check', data: { kind: 'spool' } }];
    let store;
    try {
      store = await openStore(ctx.settings);
    } catch (err) {
      return [{ section, status: 'fail', message: err instanceof Error ? err.message : String(err), data: { kind: 'odbc' } }];
    }
    try {
      const listed = await store.listMailboxes();
      const out: CheckResult[] = [{ section, status: 'ok', message: `${store.location}: ${listed.refs.length} mailbox${listed.refs.length === 1 ? '' : 'es'} with voicemail`, data: { kind: store.kind, location: store.location, mailboxes: listed.refs.length, problems: listed.problems.length } }];
      for (const p of listed.problems.slice(0, MAX_LISTED)) out.push({ section, status: 'warn', message: `${p.path}: ${p.problem}` });
      if (listed.problems.length > MAX_LISTED) out.push({ section, status: 'warn', message: `... and ${listed.problems.length - MAX_LISTED} more` });
      return out;
    } catch (err) {
      return [{ section, status: 'fail', message: `${store.location}: ${err instanceof Error ? err.message : String(err)}`, data: { kind: store.kind } }];
    } finally {
      await store.close().catch(() => undefined);
    }
  },
};
