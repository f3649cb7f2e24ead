/**
 * Health, readiness and metrics over HTTP (off unless http.port is set; loopback by default):
 *   GET /healthz  200 while the process runs
 *   GET /readyz   200 when Redis answers, 503 otherwise
 *   GET /metrics  Prometheus text format
 *   POST /dovecot-push  mail-store events from Dovecot (when http.push.enabled; ./dovecot-push.ts)
 */
import { createServer, type Server } from 'node:http';
import type { Redis } from 'ioredis';
import { DOVECOT_PUSH_PATH, handleDovecotPush, type DovecotPushOptions } from './dovecot-push.js';
import type { Metrics } from './metrics.js';

export async function startHttpServer(opts: { host: string; port: number; redis: Redis; metrics: Metrics; push?: DovecotPushOptions }): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === DOVECOT_PUSH_PATH && opts.push) return handleDovecotPush(req, res, opts.push);
    if (req.method !== 'GET') return send(405, 'method not allowed\n');
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
