/**
 * The few asterisk.conf settings vmbridge must agree with Asterisk on: which folder lock it takes
 * (main/options.c `lockmode`), where the spool is (`astspooldir`), and whose files they are.
 */
import { loadConfigFile, type ConfProblem } from './voicemail-conf.js';

export type LockMode = 'lockfile' | 'flock';

export interface AsteriskConf {
  readonly lockmode: LockMode;
  readonly astspooldir?: string;
  readonly runuser?: string;
  readonly rungroup?: string;
  /** Lines that could not be used (the values above fall back to Asterisk's defaults). */
  readonly problems: readonly ConfProblem[];
}

/** Reads asterisk.conf. A missing file throws ConfigError naming it. */
export async function readAsteriskConf(path: string): Promise<AsteriskConf> {
  const loaded = await loadConfigFile(path);
  const problems: ConfProblem[] = [...loaded.problems];
  let lockmode: LockMode = 'lockfile';
  let astspooldir: string | undefined;
  let runuser: string | undefined;
  let rungroup: string | undefined;
  // Templates (`[directories](!)`, as in asterisk.conf.sample) are ignored by Asterisk, so here too.
  for (const section of loaded.sections) {
    if (section.template) continue;
    const name = section.name.toLowerCase();
    for (const e of section.entries) {
      const key = e.name.toLowerCase();
      if (name === 'options' && key === 'lockmode') {
        const mode = e.value.toLowerCase();
        if (mode === 'flock' || mode === 'lockfile') {
          lockmode = mode;
        } else {
          // Asterisk logs "'%s' is not a valid setting for the lockmode option" and uses lockfile.
          lockmode = 'lockfile';
          problems.push({ file: e.file, line: e.line, problem: `lockmode ${JSON.stringify(e.value)} is not lockfile or flock; Asterisk uses lockfile, and so does vmbridge` });
        }
      } else if (name === 'options' && key === 'runuser') {
        runuser = e.value === '' ? undefined : e.value;
      } else if (name === 'options' && key === 'rungroup') {
        rungroup = e.value === '' ? undefined : e.value;
      } else if (name === 'directories' && key === 'astspooldir') {
        astspooldir = e.value === '' ? undefined : e.value;
      }
    }
  }
  return {
    lockmode,
    ...(astspooldir !== undefined ? { astspooldir } : {}),
    ...(runuser !== undefined ? { runuser } : {}),
    ...(rungroup !== undefined ? { rungroup } : {}),
    problems,
  };
}
