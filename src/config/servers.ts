/**
 * The voicemail servers of one installation. The top-level spool and asterisk sections are the
 * main server; each `servers` entry is one more, with its own store, voicemail.conf and AMI. The
 * engine sees each server through the installation's settings as that server would have them
 * alone (its spool, its asterisk, the MWI targets that show its mailboxes), so every part that
 * served one server serves each of them unchanged (docs/stores.md).
 */
import type { Settings } from './schema.js';

/** What target.servers calls the top-level spool and asterisk sections. */
export const MAIN_SERVER = 'main';

export interface VoicemailServer {
  /** MailboxRef.server of its mailboxes: undefined for the main server. */
  readonly name: string | undefined;
  /** `main` or the name: for logs, the doctor and mwi.targets[].servers. */
  readonly label: string;
  /** The installation's settings as this server sees them. */
  readonly settings: Settings;
}

type Target = Settings['mwi']['targets'][number];

/** Whether a target shows the lamps of the server called `label`. */
export function targetServes(target: Target, label: string): boolean {
  return target.servers === undefined || target.servers.includes(label);
}

export function voicemailServers(settings: Settings): VoicemailServer[] {
  const view = (label: string, spool: Settings['spool'], asterisk: Settings['asterisk']): Settings => ({
    ...settings,
    spool,
    asterisk,
    mwi: { ...settings.mwi, targets: settings.mwi.targets.filter((t) => targetServes(t, label)) },
  });
  return [
    { name: undefined, label: MAIN_SERVER, settings: view(MAIN_SERVER, settings.spool, settings.asterisk) },
    ...settings.servers.map((s) => ({
      name: s.name,
      label: s.name,
      settings: view(s.name, { ...s.spool, sweepSeconds: settings.spool.sweepSeconds }, s.asterisk),
    })),
  ];
}

/** The server a mailbox is on; undefined for a server the settings no longer name. */
export function serverOf(servers: readonly VoicemailServer[], name: string | undefined): VoicemailServer | undefined {
  return servers.find((s) => s.name === name);
}
