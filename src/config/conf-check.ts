/**
 * `vmbridge conf-check`: what vmbridge does with each option a voicemail.conf sets, one line per
 * option, in the order they first appear ([general] first, then the mailboxes' options).
 */
import { classifyOption, type OptionUse } from './option-catalog.js';
import type { VoicemailConf } from './voicemail-conf.js';

export interface OptionReport {
  readonly option: string;
  readonly use: OptionUse;
  readonly why: string;
  /** Where it is set: `[general]`, and/or the mailboxes (mailbox@context), the first few. */
  readonly where: readonly string[];
}

const MAX_WHERE = 3;

export function checkOptions(conf: VoicemailConf): OptionReport[] {
  const found = new Map<string, string[]>();
  const note = (option: string, where: string): void => {
    const key = option.toLowerCase();
    const list = found.get(key) ?? [];
    if (list.length < MAX_WHERE && !list.includes(where)) list.push(where);
    found.set(key, list);
  };
  for (const key of Object.keys(conf.general)) note(key, '[general]');
  for (const box of conf.boxes) for (const key of Object.keys(box.options)) note(key, `${box.mailbox}@${box.context}`);
  const out: OptionReport[] = [...found].map(([option, where]) => ({ option, ...classifyOption(option), where }));
  if (Object.keys(conf.zonemessages).length > 0) out.push({ option: '[zonemessages]', use: 'used', why: 'the time zones that tz= names, for the dates in the email', where: [] });
  return out;
}

/** The report as `conf-check` prints it: `<option>: <use> — <why>`. */
export function renderOptionReport(report: readonly OptionReport[]): string[] {
  return report.map((r) => `${r.option}: ${r.use} — ${r.why}`);
}

/** The options vmbridge does not support that a file sets, for `run` and `doctor` to report. */
export function unsupportedOptions(conf: VoicemailConf): OptionReport[] {
  return checkOptions(conf).filter((r) => r.use === 'not supported');
}
