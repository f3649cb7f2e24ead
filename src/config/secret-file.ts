/**
 * Secrets named by `...File` settings (imap.login.masterPasswordFile, redis.passwordFile,
 * asterisk.ami.secretFile, alerts.smtp.auth.passFile, http.push.tokenFile, the MWI targets'
 * files), read once at start. Errors and warnings name the setting and the file, never the secret.
 */
import { access, readFile, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { ConfigError } from '../errors.js';

function whyUnreadable(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'does not exist' : e.code === 'EACCES' ? 'is not readable by this user' : e.code === 'EISDIR' ? 'is a directory' : e.message;
}

/**
 * The secret in `path`, the setting `key`: the whole file but one trailing newline. `echo secret >
 * file` and most secret stores end the file with a newline that is not part of the secret; other
 * whitespace is kept, as it may be.
 */
export async function readSecretFile(key: string, path: string, warnings: string[]): Promise<string> {
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    // Readable by everyone means any local user can use the secret.
    if ((info.mode & 0o004) !== 0) warnings.push(`${key}: ${path} is readable by every user; chmod 600 it (or 640 with the vmbridge group)`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${key}: secret file ${path} ${whyUnreadable(err)}`, { key }, { cause: err });
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError(`${key}: secret file ${path} is empty`, { key });
  return secret;
}

/** A file a setting names must be readable now, not at the first connection that needs it. */
export async function checkReadable(key: string, path: string | undefined): Promise<void> {
  if (path === undefined) return;
  try {
    await access(path, fsConstants.R_OK);
  } catch (err) {
    throw new ConfigError(`${key}: ${path} ${whyUnreadable(err)}`, { key }, { cause: err });
  }
}
