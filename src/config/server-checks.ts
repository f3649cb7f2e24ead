/**
 * servers: checked as a whole once the schema has passed, since what is wrong is how the entries
 * meet (two servers on one spool, a target naming a server that does not exist).
 */
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Settings } from './schema.js';
import { readSecretFile } from './secret-file.js';
import { MAIN_SERVER } from './servers.js';

export async function checkServers(settings: Settings, warnings: string[], file: string | undefined): Promise<void> {
  const at = file ? { file } : {};
  const names = new Set<string>([MAIN_SERVER]);
  const spools = new Map<string, string>([[resolve(settings.spool.dir), 'spool.dir']]);
  const confs = new Map<string, string>([[resolve(settings.spool.voicemailConf), 'spool.voicemailConf']]);
  for (const [i, server] of settings.servers.entries()) {
    const key = (k: string): string => `servers.${i}.${k}`;
    if (names.has(server.name)) throw new ConfigError(`${key('name')}: the server name ${JSON.stringify(server.name)} is used twice`, { key: key('name'), ...at });
    names.add(server.name);
    // Two servers on one spool would each sync the same files, and each think the other's changes its own.
    const dir = resolve(server.spool.dir);
    const sameDir = spools.get(dir);
    if (sameDir) throw new ConfigError(`${key('spool.dir')} (${server.spool.dir}) is the same spool as ${sameDir}; each server has its own`, { key: key('spool.dir'), ...at });
    spools.set(dir, key('spool.dir'));
    const conf = resolve(server.spool.voicemailConf);
    const sameConf = confs.get(conf);
    if (sameConf) throw new ConfigError(`${key('spool.voicemailConf')} (${server.spool.voicemailConf}) is the same file as ${sameConf}; each server has its own voicemail.conf`, { key: key('spool.voicemailConf'), ...at });
    confs.set(conf, key('spool.voicemailConf'));
    await readAmiSecret(server.asterisk.ami, `servers.${i}.asterisk.ami`, warnings, at);
  }
  for (const [i, target] of settings.mwi.targets.entries()) {
    const key = `mwi.targets.${i}.servers`;
    for (const name of target.servers ?? []) {
      if (!names.has(name)) throw new ConfigError(`${key} (target ${target.name}) names the server ${JSON.stringify(name)}, which is neither ${MAIN_SERVER} nor in servers`, { key, ...at });
    }
    if (settings.servers.length > 0 && target.kind === 'ami-refresh' && target.servers === undefined) {
      throw new ConfigError(`${key} (target ${target.name}): with several voicemail servers an ami-refresh target must name the server it is (VoicemailRefresh counts a mailbox of that Asterisk's own spool), e.g. servers: [${MAIN_SERVER}]`, { key, ...at });
    }
  }
}

/** As asterisk.ami: exactly one of secret and secretFile; the file is read here, once. */
async function readAmiSecret(ami: Settings['asterisk']['ami'], base: string, warnings: string[], at: { file?: string }): Promise<void> {
  if (ami === undefined) return;
  if (ami.secret !== undefined && ami.secretFile !== undefined) throw new ConfigError(`${base}.secret and ${base}.secretFile are both set; set only one`, { key: `${base}.secretFile`, ...at });
  if (ami.secret !== undefined) warnings.push(`${base}.secret is written in the settings file; prefer ${base}.secretFile`);
  if (ami.secretFile !== undefined) ami.secret = await readSecretFile(`${base}.secretFile`, ami.secretFile, warnings);
  if (ami.secret === undefined) throw new ConfigError(`${base}.host is set but neither ${base}.secretFile nor ${base}.secret is`, { key: `${base}.secret`, ...at });
  if (/[\r\n\0]/.test(ami.secret)) throw new ConfigError(`${base}.secret contains a line break or NUL, which AMI cannot carry`, { key: `${base}.secret`, ...at });
}
