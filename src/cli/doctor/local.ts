/** Checks of what lives on this host: the spool directory and voicemail.conf. */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { unsupportedOptions } from '../../config/conf-check.js';
import { listSpoolMailboxes } from '../../spool/list-mailboxes.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

/** Problems listed one per line at most; the rest are counted. */
const MAX_LISTED = 10;

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'is not readable by this user (vmbridge runs as, or in the group of, the asterisk user)';
  if (code === 'ENOTDIR') return 'is not a directory';
  return err instanceof Error ? err.message : String(err);
}

export const spoolCheck: DoctorCheck = {
  perServer: true,
  name: 'spool',
  describes: 'the spool directory (spool.dir) is readable; how many mailbox folders it holds',
  async run(ctx) {
    const section = 'spool';
    const dir = ctx.settings.spool.dir;
    const fail = (message: string): CheckResult[] => [{ section, status: 'fail', message, data: { dir } }];
    try {
      if (!(await stat(dir)).isDirectory()) return fail(`spool.dir ${dir} is not a directory`);
      await access(dir, fsConstants.R_OK | fsConstants.X_OK);
    } catch (err) {
      return fail(`spool.dir ${dir} ${errnoText(err)}`);
    }
    const voicemail = join(dir, 'voicemail');
    try {
      await access(voicemail, fsConstants.R_OK | fsConstants.X_OK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return [{ section, status: 'warn', message: `${voicemail} does not exist yet: no voicemail has been left, or spool.dir is not Asterisk's astspooldir`, data: { dir, mailboxes: 0 } }];
      }
      return fail(`${voicemail} ${errnoText(err)}`);
    }
    let listed: Awaited<ReturnType<typeof listSpoolMailboxes>>;
    try {
      listed = await listSpoolMailboxes(dir);
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
    const out: CheckResult[] = [{
      section,
      status: 'ok',
      message: `${voicemail} is readable: ${listed.refs.length} mailbox folder${listed.refs.length === 1 ? '' : 's'}`,
      data: { dir, mailboxes: listed.refs.length, problems: listed.problems.length },
    }];
    for (const p of listed.problems.slice(0, MAX_LISTED)) out.push({ section, status: 'warn', message: `${p.path}: ${p.problem}` });
    if (listed.problems.length > MAX_LISTED) out.push({ section, status: 'warn', message: `... and ${listed.problems.length - MAX_LISTED} more` });
    return out;
  },
};

export const voicemailConfCheck: DoctorCheck = {
  perServer: true,
  name: 'voicemail.conf',
  describes: 'voicemail.conf (spool.voicemailConf) is read: how many mailboxes, which lines have problems',
  async run(ctx) {
    const section = 'voicemail.conf';
    const path = ctx.settings.spool.voicemailConf;
    const read = await ctx.directory();
    if (!read.ok) return [{ section, status: 'fail', message: read.error, data: { path } }];
    const problems = [
      ...read.conf.problems.map((p) => `${p.file}:${p.line}: ${p.problem}`),
      ...read.directory.problems.map((p) => `${p.file}:${p.line}: mailbox ${p.mailbox}: ${p.problem}`),
    ];
    const boxes = read.conf.boxes.length;
    const synced = read.directory.boxes.size;
    const accounts = new Set([...read.directory.boxes.values()].map((b) => b.account.user)).size;
    const out: CheckResult[] = [{
      section,
      status: problems.length > 0 ? 'warn' : synced === 0 ? 'warn' : 'ok',
      message: `${path}: ${boxes} mailbox${boxes === 1 ? '' : 'es'}, ${problems.length} problem${problems.length === 1 ? '' : 's'}; ${synced} with an IMAP account (${accounts} distinct account${accounts === 1 ? '' : 's'})`,
      data: { path, mailboxes: boxes, problems: problems.length, synced, accounts },
    }];
    for (const p of problems.slice(0, MAX_LISTED)) out.push({ section, status: 'warn', message: p });
    if (problems.length > MAX_LISTED) out.push({ section, status: 'warn', message: `... and ${problems.length - MAX_LISTED} more` });
    for (const o of unsupportedOptions(read.conf)) out.push({ section, status: 'warn', message: `${o.option} (${o.where.join(', ')}): not supported — ${o.why}` });
    return out;
  },
};
