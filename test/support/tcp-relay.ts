/**
 * A loopback TCP relay in front of a test server, to make that server unreachable and reachable
 * again on the same port, as a network failure would, without stopping the server itself.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  readonly port: number;
  /** Refuses new connections and cuts the open ones. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(upstreamPort: number): Promise<TcpRelay> {
  const open = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number): Promise<number> => new Promise((resolve, reject) => {
    const s = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
      for (const sock of [client, upstream]) {
        open.add(sock);
        sock.on('close', () => open.delete(sock));
        sock.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      server = s;
      const a = s.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of open) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  const port = await listen(0);
  return {
    port,
    cut: stop,
    restore: async () => {
      if (!server) await listen(port);
    },
    close: stop,
  };
}
