/** imap.doveadm: exactly one of apiKey and apiKeyFile; the file is read here, once. */
import { ConfigError } from '../errors.js';
import type { Settings } from './schema.js';
import { readSecretFile } from './secret-file.js';

export async function checkDoveadm(settings: Settings, warnings: string[], file: string | undefined): Promise<void> {
  const d = settings.imap.doveadm;
  if (d === undefined) return;
  const at = file ? { file } : {};
  if (d.apiKey !== undefined && d.apiKeyFile !== undefined) throw new ConfigError('imap.doveadm.apiKey and imap.doveadm.apiKeyFile are both set; set only one', { key: 'imap.doveadm.apiKeyFile', ...at });
  if (d.apiKey !== undefined) warnings.push('imap.doveadm.apiKey is written in the settings file; prefer imap.doveadm.apiKeyFile');
  if (d.apiKeyFile !== undefined) d.apiKey = await readSecretFile('imap.doveadm.apiKeyFile', d.apiKeyFile, warnings);
  if (d.apiKey === undefined) throw new ConfigError('imap.doveadm.url is set but neither imap.doveadm.apiKeyFile nor imap.doveadm.apiKey is (Dovecot\'s doveadm_api_key)', { key: 'imap.doveadm.apiKeyFile', ...at });
  if (/[\r\n\0]/.test(d.apiKey)) throw new ConfigError('imap.doveadm.apiKey contains a line break or NUL, which an HTTP header cannot carry', { key: 'imap.doveadm.apiKeyFile', ...at });
}
