/**
 * `vmbridge doctor`: checks that vmbridge can work with what its settings name, and says what it
 * will do because of what it finds (a server without UIDPLUS, a missing trash folder, ...).
 *
 * Each check is a DoctorCheck in CHECKS, run in that order; `--help` lists them from there. A new
 * check (AMI, SMTP, ...) is one more entry: a name, a line for the help text, and a function that
 * returns results. A result with status `fail` means something vmbridge needs is missing and makes
 * the exit code 1; `warn` is shown but does not.
 */
import type { Settings } from '../config/schema.js';
import { amiCheck } from './doctor/ami.js';
import { audioCheck } from './doctor/audio.js';
import { delayCheck } from './doctor/delay.js';
import { readDirectoryOnce, type DirectoryRead } from './doctor/directory.js';
import { imapCheck } from './doctor/imap.js';
import { spoolCheck, voicemailConfCheck } from './doctor/local.js';
import { storeCheck } from './doctor/store.js';
import { pushCheck } from './doctor/push.js';
import { redisCheck } from './doctor/redis.js';
import { smtpCheck } from './doctor/smtp.js';
import { voicemailServers } from '../config/servers.js';

export type CheckStatus = 'ok' | 'info' | 'warn' | 'fail';

export interface CheckResult {
  /** The heading it is shown under, e.g. "redis" or "IMAP 127.0.0.1:993 (TLS)". */
  readonly section: string;
  readonly status: CheckStatus;
  /** One line, for a person; never a secret. */
  readonly message: string;
  /** The same facts for machines (--json). */
  readonly data?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface DoctorContext {
  readonly settings: Settings;
  /** Log in with at most this many distinct IMAP accounts. */
  readonly maxAccounts: number;
  /** voicemail.conf and the IMAP accounts it gives, read once and shared by the checks. */
  directory(): Promise<DirectoryRead>;
}

export interface DoctorCheck {
  readonly name: string;
  /** What it checks, for `vmbridge doctor --help`. */
  readonly describes: string;
  run(ctx: DoctorContext): Promise<CheckResult[]>;
  /** Run once for each voicemail server (its spool, voicemail.conf, store, AMI) where there are several. */
  readonly perServer?: boolean;
}

/** The checks, in the order they run and are shown. Add new ones here. */
export const CHECKS: readonly DoctorCheck[] = [spoolCheck, voicemailConfCheck, storeCheck, audioCheck, redisCheck, imapCheck, amiCheck, smtpCheck, pushCheck, delayCheck];

export const DEFAULT_MAX_ACCOUNTS = 20;

export interface DoctorReport {
  readonly ok: boolean;
  readonly failures: number;
  readonly warnings: number;
  readonly settingsFile: string | undefined;
  readonly results: readonly CheckResult[];
}

export async function runDoctor(
  settings: Settings,
  opts: { settingsFile?: string | undefined; maxAccounts?: number; checks?: readonly DoctorCheck[]; before?: readonly CheckResult[] } = {},
): Promise<DoctorReport> {
  const maxAccounts = opts.maxAccounts ?? DEFAULT_MAX_ACCOUNTS;
  const ctx: DoctorContext = { settings, maxAccounts, directory: readDirectoryOnce(settings) };
  const servers = voicemailServers(settings);
  // Each server's own checks see the settings as that server would have them alone.
  const serverContexts = servers.map((s) => ({ label: s.label, ctx: s.name === undefined ? ctx : { settings: s.settings, maxAccounts, directory: readDirectoryOnce(s.settings) } }));
  const results: CheckResult[] = [...(opts.before ?? [])];
  for (const check of opts.checks ?? CHECKS) {
    const runs = check.perServer && servers.length > 1 ? serverContexts : [{ label: undefined, ctx }];
    for (const run of runs) {
      try {
        const found = await check.run(run.ctx);
        results.push(...(run.label === undefined ? found : found.map((r) => ({ ...r, section: `${r.section} (server ${run.label})` }))));
      } catch (err) {
        // A check that breaks must not hide the others' answers.
        results.push({ section: run.label === undefined ? check.name : `${check.name} (server ${run.label})`, status: 'fail', message: `the check itself failed: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
  }
  return summarize(opts.settingsFile, results);
}

export function summarize(settingsFile: string | undefined, results: readonly CheckResult[]): DoctorReport {
  const failures = results.filter((r) => r.status === 'fail').length;
  const warnings = results.filter((r) => r.status === 'warn').length;
  return { ok: failures === 0, failures, warnings, settingsFile, results };
}

const LABEL: Record<CheckStatus, string> = { ok: 'OK  ', info: 'INFO', warn: 'WARN', fail: 'FAIL' };

export function renderText(report: DoctorReport): string {
  const lines = [`vmbridge doctor${report.settingsFile ? ` (settings: ${report.settingsFile})` : ''}`];
  let section: string | undefined;
  for (const r of report.results) {
    if (r.section !== section) {
      section = r.section;
      lines.push('', section);
    }
    lines.push(`  ${LABEL[r.status]}  ${r.message}`);
  }
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('', report.ok
    ? `Result: ready (${plural(report.warnings, 'warning')})`
    : `Result: NOT ready: ${plural(report.failures, 'failure')}, ${plural(report.warnings, 'warning')}`);
  return `${lines.join('\n')}\n`;
}

export function renderJson(report: DoctorReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Words of `text` in lines of at most `width` characters, each after `indent` spaces. */
function wrap(text: string, indent: number, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function doctorHelp(): string {
  const width = Math.max(...CHECKS.map((c) => c.name.length)) + 2;
  const checks = CHECKS.flatMap((c) => wrap(c.describes, width + 2, 100).map((l, i) => `  ${(i === 0 ? c.name : '').padEnd(width)}${l}`));
  return `Usage: vmbridge doctor [--json] [--accounts N] [--config FILE]

Checks that vmbridge can work with what its settings name, and says what it will do because of
what it finds. Nothing is changed anywhere. The checks:
${checks.join('\n')}

The exit code is 0 when everything vmbridge needs works (warnings, such as a server without UIDPLUS,
are shown but allowed) and 1 when something it needs is missing (an IMAP login fails, Redis does not
answer, the spool is unreadable, voicemail.conf is missing). Passwords are never printed.

  --json              The results as one JSON object instead of lines
  --accounts N        Log in with at most N distinct IMAP accounts of voicemail.conf (default ${DEFAULT_MAX_ACCOUNTS});
                      a master login is tried once`;
}
