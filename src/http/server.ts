/**
 * Health, readiness and metrics over HTTP (on by default on 127.0.0.1:9465; http.port 0 turns it off):
 *   GET /healthz  200 while the process runs
 *   GET /readyz   JSON: every component by name with its status (./readiness.ts); 503 when a
 *                 required one (Redis, the IMAP server) is down
 *   GET /metrics  Prometheus text format (./metrics.ts)
 *   POST /dovecot-push  mail-store events from Dovecot (when http.push.enabled; ./dovecot-push.ts)
 *   GET /status, /status.json, /queues/...  the status page and the queue view, behind a login
 *                 (when http.status.enabled; ./status-page.ts, ./queue-board.ts)
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterBody } from './after-body.js';
import { ConfigError } from '../errors.js';
import { DOVECOT_PUSH_PATH, handleDovecotPush, type DovecotPushOptions } from './dovecot-push.js';
import type { Metrics } from './metrics.js';
import { requireLogin, type PageCredentials } from './page-auth.js';
import { QUEUES_PATH, type QueueBoard } from './queue-board.js';
import { statusPageCsp, statusPageHtml } from './status-page.js';
import type { StatusView } from '../status/status-view.js';
import { checkReadiness, httpStatusOf, type ComponentCheck } from './readiness.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  /** Asked at every GET /readyz (a function: the components follow reloads). */
  readonly readiness: () => readonly ComponentCheck[];
  readonly push?: DovecotPushOptions;
  readonly status?: StatusPageServing;
}

export interface StatusPageServing {
  readonly credentials: PageCredentials;
  readonly refreshSeconds: number;
  /** Asked at every GET /status.json. */
  readonly view: () => Promise<StatusView>;
  readonly board?: QueueBoard;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const failed = (err: unknown): void => send(500, `${err instanceof Error ? err.message : String(err)}\n`);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === DOVECOT_PUSH_PATH && opts.push) return handleDovecotPush(req, res, opts.push);
    if (path === DOVECOT_PUSH_PATH) return afterBody(req, () => send(404, 'push is not enabled here (http.push.enabled)\n'));
    const status = opts.status;
    if (status && (path === QUEUES_PATH || path.startsWith(`${QUEUES_PATH}/`))) {
      if (!requireLogin(req, res, status.credentials)) return;
      if (status.board) return status.board.handle(req, res);
      return send(404, 'not found\n');
    }
    if (req.method !== 'GET') return send(405, 'method not allowed\n');
    if (path === '/healthz') return send(200, 'ok\n');
    if (path === '/readyz') {
      checkReadiness(opts.readiness()).then((r) => send(httpStatusOf(r), `${JSON.stringify(r, null, 2)}\n`, 'application/json; charset=utf-8'), failed);
      return;
    }
    if (status && (path === '/status' || path === '/status.json')) {
      if (!requireLogin(req, res, status.credentials)) return;
      if (path === '/status.json') {
        status.view().then((v) => send(200, JSON.stringify(v), 'application/json; charset=utf-8'), failed);
        return;
      }
      const nonce = randomBytes(16).toString('base64');
      res.setHeader('content-security-policy', statusPageCsp(nonce));
      res.setHeader('x-content-type-options', 'nosniff');
      return send(200, statusPageHtml({ refreshSeconds: status.refreshSeconds, nonce, ...(status.board ? { queuesPath: `${QUEUES_PATH}/` } : {}) }), 'text/html; charset=utf-8');
    }
    if (path === '/metrics') {
      opts.metrics.render().then((text) => send(200, text, opts.metrics.contentType), failed);
      return;
    }
    return send(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? ' (another program, or another vmbridge, listens there)' : '';
      reject(new ConfigError(`http: cannot listen on ${opts.host}:${opts.port}: ${err.message}${hint}; set http.port (VMBRIDGE_HTTP_PORT) to a free port, or 0 to turn the listener off`, { key: 'http.port' }, { cause: err }));
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
