/** A raw IMAP LOGIN probe that test servers use to know they are up and are theirs. */
import { connect } from 'node:net';

function quoteImap(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * One raw IMAP exchange: read the greeting, which `ours` must recognise (a stranger that took the
 * port is not mistaken for our instance), then LOGIN and LOGOUT. Resolves with the tagged status
 * word of the LOGIN, or 'FOREIGN' when the greeting is not ours.
 */
export function loginProbe(port: number, ours: (greeting: string) => boolean, user: string, pass: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    let greeted = false;
    const done = (err: Error | undefined, status?: string): void => {
      socket.destroy();
      if (err) reject(err);
      else resolve(status ?? '');
    };
    socket.setTimeout(5_000, () => done(new Error('IMAP probe timed out')));
    socket.on('error', (err) => done(err));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (!greeted) {
          greeted = true;
          if (!ours(line)) return done(undefined, 'FOREIGN');
          socket.write(`a LOGIN ${quoteImap(user)} ${quoteImap(pass)}\r\n`);
        } else if (line.startsWith('a ')) {
          socket.write('z LOGOUT\r\n');
          return done(undefined, line.split(' ')[1] ?? '');
        }
      }
    });
  });
}
