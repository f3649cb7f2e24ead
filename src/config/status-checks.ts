/**
 * http.status: the status page and the queue view show every mailbox and let whoever holds the
 * password look into the queues, so they are off until a password is set, and never on without one.
 */
import { ConfigError } from '../errors.js';
import type { Settings } from './schema.js';
import { readSecretFile } from './secret-file.js';

export interface StatusCheckContext {
  /** The settings file, for the error's location. */
  readonly file: string | undefined;
  /** True when http.status.password came from the environment (not written in the file). */
  readonly passwordFromEnv: boolean;
  /** The environment variable that names the password file, for the messages. */
  readonly passwordFileEnv: string;
}

export async function checkStatusPage(settings: Settings, ctx: StatusCheckContext, warnings: string[]): Promise<void> {
  const status = settings.http.status;
  const at = ctx.file ? { file: ctx.file } : {};
  if (status.password !== undefined && status.passwordFile !== undefined) {
    throw new ConfigError('http.status.password and http.status.passwordFile are both set; set only one', { key: 'http.status.passwordFile', ...at });
  }
  if (!status.enabled) {
    if (status.password !== undefined || status.passwordFile !== undefined) warnings.push('http.status.password/passwordFile are set but http.status.enabled is false: the status page is off');
    return;
  }
  if (settings.http.port === 0) {
    throw new ConfigError('http.status.enabled is true but http.port is 0 (the listener is off); set http.port', { key: 'http.port', ...at });
  }
  if (status.passwordFile !== undefined) status.password = await readSecretFile('http.status.passwordFile', status.passwordFile, warnings);
  if (status.password === undefined) {
    throw new ConfigError(
      `http.status.enabled is true but no password is set: the page lists every mailbox; set http.status.passwordFile (${ctx.passwordFileEnv}) to a file holding a password`,
      { key: 'http.status.passwordFile', ...at },
    );
  }
  if (status.passwordFile === undefined && !ctx.passwordFromEnv) {
    warnings.push(`http.status.password is written in ${ctx.file ?? 'the settings file'}; prefer http.status.passwordFile`);
  }
  // Basic authentication carries user:password in one header; a line break could not be sent.
  if (/[\r\n\0]/.test(status.password)) {
    throw new ConfigError('http.status.password contains a line break or NUL, which HTTP authentication cannot carry', { key: 'http.status.password', ...at });
  }
  if (status.password.length < 12) warnings.push('http.status.password is shorter than 12 characters; the page lists every mailbox of the installation');
}
