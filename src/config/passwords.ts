/** The optional passwords file: a YAML mapping of IMAP user to password. Values are never logged. */
import { readFile, stat } from 'node:fs/promises';
import { parse } from 'yaml';
import { ConfigError } from '../errors.js';

export async function readPasswordsFile(path: string | undefined): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!path) return out;
  let text: string;
  try {
    const info = await stat(path);
    // A passwords file readable by everyone is a leak waiting to happen; say so rather than refuse.
    if ((info.mode & 0o004) !== 0) process.emitWarning(`${path} is world-readable; chmod 600 it`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`imap.login.passwordsFile: cannot read ${path}: ${(err as Error).message}`, { file: path, key: 'imap.login.passwordsFile' });
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid YAML: ${(err as Error).message}`, { file: path, key: 'imap.login.passwordsFile' });
  }
  if (data === null || data === undefined) return out;
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${path}: expected a mapping of IMAP user to password`, { file: path, key: 'imap.login.passwordsFile' });
  }
  for (const [user, pass] of Object.entries(data as Record<string, unknown>)) {
    if (typeof pass !== 'string' && typeof pass !== 'number') {
      throw new ConfigError(`${path}: the password of ${JSON.stringify(user)} must be a string`, { file: path, key: 'imap.login.passwordsFile' });
    }
    out.set(user, String(pass));
  }
  return out;
}
