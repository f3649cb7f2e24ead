/**
 * Health, readiness and metrics over HTTP (off unless http.port is set; loopback by default):
 *   GET /healthz  200 while the process runs
 *   GET /readyz   200 when Redis answers, 503 otherwise
 *   GET /metrics  Prometheus text format
 */
import { createServer, type Server } from 'node:http';
import type { Redis } from 'ioredis';
import type { Metrics } from './metrics.js';

export async function startHttpServer(opts: { host: string; port: number; redis: Redis; metrics: Metrics }): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'method not allowed\n');
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(200, 'ok\n');
    if (path === '/readyz') {
      opts.redis.ping().then(
        () => send(200, 'ready\n'),
        (err: Error) => send(503, `redis: ${err.message}\n`),
      );
      return;
    }
    if (path === '/metrics') return send(200, opts.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
    return send(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
