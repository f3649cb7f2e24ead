/**
 * Reads an OAuth2 bearer token for one IMAP user, from imap.login.tokenFile or by running
 * imap.login.tokenCommand. Read at every (re)connect rather than cached, so a token that another
 * program rotates is picked up without a restart. The token itself never goes into an error.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ImapError } from '../errors.js';

export const TOKEN_COMMAND_TIMEOUT_MS = 10_000;

export interface TokenSource {
  readonly tokenFile?: string | undefined;
  readonly tokenCommand?: readonly string[] | undefined;
}

/** `{user}` in a path must not let a user name walk out of the token folder. */
function safeForPath(user: string): boolean {
  return user !== '' && user !== '.' && user !== '..' && !/[/\\\0]/.test(user);
}

function checkToken(user: string, token: string, from: string): string {
  if (token === '') throw new ImapError(user, `${from} gave an empty OAuth2 token`);
  // A token travels inside one SASL line: a line break would corrupt the exchange.
  if (/[\r\n\0]/.test(token)) throw new ImapError(user, `${from} gave an OAuth2 token with a line break or NUL in it`);
  return token;
}

/** One trailing newline (as editors and `echo` write) is not part of the token. */
function trimEnd(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export async function readTokenFile(pathTemplate: string, user: string): Promise<string> {
  if (pathTemplate.includes('{user}') && !safeForPath(user)) {
    throw new ImapError(user, 'imap.login.tokenFile has {user}, but this IMAP user name cannot be part of a file path');
  }
  const path = pathTemplate.split('{user}').join(user);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ImapError(user, `cannot read imap.login.tokenFile ${path} (${code})`, { cause: err });
  }
  return checkToken(user, trimEnd(text), `imap.login.tokenFile ${path}`);
}

export function runTokenCommand(argv: readonly string[], user: string, timeoutMs = TOKEN_COMMAND_TIMEOUT_MS): Promise<string> {
  const [program, ...rest] = argv;
  if (program === undefined) return Promise.reject(new ImapError(user, 'imap.login.tokenCommand is empty'));
  const args = rest.map((a) => a.split('{user}').join(user));
  const what = `imap.login.tokenCommand ${program}`;
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: string | number | null };
        // stderr is the program's own explanation; stdout could hold a (partial) token, so it is never shown.
        const said = stderr.trim().split('\n')[0]?.slice(0, 200);
        const why = e.killed || e.signal === 'SIGKILL'
          ? `did not finish within ${timeoutMs / 1000} s`
          : typeof e.code === 'number' ? `exited with code ${e.code}` : `could not be run (${String(e.code ?? e.message)})`;
        reject(new ImapError(user, `${what} ${why}${said ? `: ${said}` : ''}`, { cause: err }));
        return;
      }
      try {
        resolve(checkToken(user, trimEnd(stdout), what));
      } catch (tokenErr) {
        reject(tokenErr);
      }
    });
  });
}

/** The current token for `user`: from tokenFile or tokenCommand, whichever is set. */
export async function readAccessToken(source: TokenSource, user: string): Promise<string> {
  if (source.tokenFile !== undefined) return readTokenFile(source.tokenFile, user);
  if (source.tokenCommand !== undefined) return runTokenCommand(source.tokenCommand, user);
  throw new ImapError(user, 'imap.login.mode is oauth2 but neither imap.login.tokenFile nor imap.login.tokenCommand is set');
}
