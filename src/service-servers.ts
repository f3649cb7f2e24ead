/**
 * The voicemail servers as `vmbridge run` starts them: every server's mailboxes from its own
 * voicemail.conf, and each server's AMI session and store (docs/stores.md, "Several voicemail
 * servers").
 */
import { readPasswordsFile } from './config/passwords.js';
import type { Settings } from './config/schema.js';
import { voicemailServers, type VoicemailServer } from './config/servers.js';
import { unsupportedOptions } from './config/conf-check.js';
import { readVoicemailConf } from './config/voicemail-conf.js';
import type { Logger } from './log.js';
import { startAmiSession, type AmiSession } from './mwi/ami-session.js';
import { isNewFinding } from './spool/report-once.js';
import { recoverOwnStaleLocks } from './spool/write.js';
import { openStore } from './store/open.js';
import type { VoicemailStore } from './store/types.js';
import { buildDirectory, type BoxInfo, type Directory } from './sync/directory.js';

/** Every voicemail server's mailboxes, each from that server's voicemail.conf. */
export async function loadDirectory(settings: Settings, log: Logger): Promise<Directory> {
  const passwords = await readPasswordsFile(settings.imap.login.passwordsFile);
  const boxes = new Map<string, BoxInfo>();
  const problems: Directory['problems'][number][] = [];
  for (const server of voicemailServers(settings)) {
    const file = server.settings.spool.voicemailConf;
    const conf = await readVoicemailConf(file);
    for (const p of conf.problems) log.warn({ file: p.file, line: p.line, problem: p.problem }, 'voicemail.conf line skipped');
    for (const o of unsupportedOptions(conf)) {
      // Once per option and process, not at every reload.
      if (isNewFinding(`voicemail.conf option ${o.option} ${file}`, o.why)) log.warn({ file, option: o.option, where: o.where, why: o.why }, 'voicemail.conf option vmbridge does not support');
    }
    const directory = buildDirectory(conf, server.settings, passwords, server.name);
    for (const p of directory.problems) log.warn({ mailbox: p.mailbox, file: p.file, line: p.line, problem: p.problem }, 'voicemail.conf mailbox problem');
    for (const [key, box] of directory.boxes) boxes.set(key, box);
    problems.push(...directory.problems);
  }
  return { boxes, problems };
}

/** One voicemail server as the service runs it: its store, and its AMI session when it has one. */
export interface RunningServer {
  readonly server: VoicemailServer;
  readonly ami: AmiSession | undefined;
  readonly store: VoicemailStore;
}

/** Opens each server's AMI session and store; what opened before a failure is closed again. */
export async function openServers(servers: readonly VoicemailServer[], log: Logger): Promise<RunningServer[]> {
  const running: RunningServer[] = [];
  try {
    for (const server of servers) {
      const amiSettings = server.settings.asterisk.ami;
      const serverLog = servers.length > 1 ? log.child({ server: server.label }) : log;
      await recoverSpoolLocks(server.settings.spool.dir, serverLog);
      // One session with the owning Asterisk, events on: it moves and removes voicemail, tells whether
      // a caller is in VoiceMailMain, and its MessageWaiting events say a mailbox may have changed.
      const ami = amiSettings ? startAmiSession(amiSettings, serverLog, { events: true }) : undefined;
      try {
        const store = await openStore(server.settings, ami && amiSettings ? { client: ami.client, useVoicemailActions: amiSettings.useVoicemailActions } : undefined);
        running.push({ server, ami, store });
        serverLog.info({ store: store.kind, location: store.location }, 'voicemail store');
      } catch (err) {
        await ami?.close();
        throw err;
      }
    }
  } catch (err) {
    for (const r of running) {
      await r.store.close().catch(() => undefined);
      await r.ami?.close().catch(() => undefined);
    }
    throw err;
  }
  return running;
}

/**
 * A vmbridge killed while it held a spool folder's lock left the lock behind, and nothing in
 * Asterisk clears a stale lock: it is taken over, the folder tidied, then released. Runs once,
 * before any other spool work.
 */
async function recoverSpoolLocks(spoolDir: string, log: Logger): Promise<void> {
  try {
    const r = await recoverOwnStaleLocks(spoolDir);
    if (r.removed.length > 0 || r.removedTemp.length > 0) {
      log.warn({ removed: r.removed, removedTemp: r.removedTemp, repaired: r.repaired }, 'stale spool locks of an earlier vmbridge run cleared');
    }
    // An empty .lock is Asterisk's; one that is old blocks its folder until removed by hand.
    for (const k of r.kept) if (k.ageMs > 60_000) log.warn({ path: k.path, holder: k.holder, ageMs: Math.round(k.ageMs) }, 'spool folder locked for over a minute; if no one is working on it, remove the lock by hand');
    for (const p of r.problems) log.warn({ path: p.path, problem: p.problem }, 'spool lock check problem');
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, 'stale spool locks not checked');
  }
}

