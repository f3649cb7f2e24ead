/** Free TCP ports on loopback for the test servers. */
import { createServer } from 'node:net';

/**
 * A port nothing listens on right now: bind 127.0.0.1:0, read what the kernel chose, close.
 * Another process can take it before the caller binds it, so callers retry on EADDRINUSE.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((err) => (err ? reject(err) : port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
