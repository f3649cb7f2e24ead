/**
 * Start-time checks of the TLS settings of every server (imap.tls, redis.tls, alerts.smtp.tls,
 * asterisk.ami.tls, the MWI targets' tls: AMI with secure, SIP with transport tls) and of redis's credentials: a CA file that cannot be
 * used is a ConfigError naming the setting, now rather than at the first connection; turning
 * verification off, or sending a secret unencrypted off this machine, is warned about.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { isLoopback } from './loopback.js';
import type { Settings } from './schema.js';
import { checkReadable, readSecretFile } from './secret-file.js';
import type { TlsSettings } from '../tls.js';

interface UsedTls {
  /** The settings block, e.g. `redis.tls`. */
  readonly key: string;
  readonly tls: TlsSettings;
}

/** The tls blocks that a connection will use; the others are not checked. */
function usedTls(settings: Settings): UsedTls[] {
  const out: UsedTls[] = [{ key: 'imap.tls', tls: settings.imap.tls }];
  if (/^rediss:\/\//i.test(settings.redis.url)) out.push({ key: 'redis.tls', tls: settings.redis.tls });
  if (settings.alerts.smtp) out.push({ key: 'alerts.smtp.tls', tls: settings.alerts.smtp.tls });
  const ami = settings.asterisk.ami;
  if (ami?.secure) out.push({ key: 'asterisk.ami.tls', tls: ami.tls });
  for (const [i, t] of settings.mwi.targets.entries()) {
    if (t.kind !== 'sip-notify' && t.kind !== 'smdi' && t.secure) out.push({ key: `mwi.targets.${i}.tls`, tls: t.tls });
    if (t.kind === 'sip-notify' && t.transport === 'tls') out.push({ key: `mwi.targets.${i}.tls`, tls: t.tls });
  }
  return out;
}

async function checkCaFile(key: string, path: string): Promise<void> {
  await checkReadable(key, path);
  const text = await readFile(path, 'utf8').catch(() => '');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(`${key}: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM form`, { key });
  }
}

export async function checkTls(settings: Settings, warnings: string[]): Promise<void> {
  for (const { key, tls } of usedTls(settings)) {
    if (tls.caFile !== undefined) await checkCaFile(`${key}.caFile`, tls.caFile);
    // imap and smtp have their own, older wording (load-settings.ts).
    if (!tls.rejectUnauthorized && key !== 'imap.tls' && key !== 'alerts.smtp.tls') {
      warnings.push(`${key}.rejectUnauthorized is false: the server certificate is not verified, so anyone on the network path can pose as the server; use ${key}.caFile for a private CA instead`);
    }
  }
  const ami = settings.asterisk.ami;
  if (ami && !ami.secure && !isLoopback(ami.host)) {
    warnings.push(`asterisk.ami.secure is false and asterisk.ami.host ${ami.host} is not a loopback address: the AMI secret and every action cross the network unencrypted (manager.conf tlsenable)`);
  }
  for (const [i, t] of settings.mwi.targets.entries()) {
    if (t.kind !== 'sip-notify' && t.kind !== 'smdi' && !t.secure && !isLoopback(t.host)) {
      warnings.push(`mwi.targets.${i}.secure (target ${t.name}) is false and its host ${t.host} is not a loopback address: the AMI secret crosses the network unencrypted (manager.conf tlsenable)`);
    }
  }
}

/**
 * redis: at most one of password and passwordFile (the file is read here, once), and not both a
 * password setting and one in redis.url.
 */
export async function checkRedis(settings: Settings, fromEnv: ReadonlyMap<string, string>, settingsFile: string | undefined, warnings: string[]): Promise<void> {
  const redis = settings.redis;
  const at = settingsFile ? { file: settingsFile } : {};
  let url: URL | undefined;
  try {
    url = new URL(redis.url);
  } catch {
    // ioredis also takes host:port without a scheme; nothing to check in it.
  }
  const urlPassword = url !== undefined && url.password !== '';
  if (redis.password !== undefined && redis.passwordFile !== undefined) {
    throw new ConfigError('redis.password and redis.passwordFile are both set; set only one', { key: 'redis.passwordFile', ...at });
  }
  if (urlPassword && (redis.password !== undefined || redis.passwordFile !== undefined)) {
    throw new ConfigError('redis.url holds a password and redis.password/passwordFile is set too; set only one (prefer redis.passwordFile)', { key: 'redis.url', ...at });
  }
  if (redis.password !== undefined && !fromEnv.has('redis.password')) {
    warnings.push(`redis.password is written in ${settingsFile ?? 'the settings file'}; prefer redis.passwordFile or VMBRIDGE_REDIS_PASSWORD`);
  }
  if (urlPassword && !fromEnv.has('redis.url')) {
    warnings.push(`redis.url holds a password written in ${settingsFile ?? 'the settings file'}; prefer redis.passwordFile`);
  }
  if (redis.passwordFile !== undefined) redis.password = await readSecretFile('redis.passwordFile', redis.passwordFile, warnings);
  if (redis.password !== undefined && /[\r\n\0]/.test(redis.password)) {
    throw new ConfigError('redis.passwordFile holds a line break or NUL, which AUTH cannot carry', { key: 'redis.passwordFile', ...at });
  }
  const hasPassword = urlPassword || redis.password !== undefined;
  if (url && hasPassword && url.protocol === 'redis:' && !isLoopback(url.hostname)) {
    warnings.push(`redis.url is redis:// (no TLS) to ${url.hostname}, not a loopback address: the Redis password crosses the network unencrypted; use rediss://`);
  }
}
