/**
 * A loopback OAuth2 token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb: the
 * authorization server's side of an OAuth2 login, reduced to a table of tokens a test controls.
 *
 * - POST /introspect with `token=<token>` (form-encoded; Dovecot's `introspection_mode = post`).
 *   A GET with `?token=` (mode get) and a GET with `Authorization: Bearer <token>` (mode auth) are
 *   answered the same way.
 * - The caller (Dovecot) authenticates with HTTP Basic as the configured client, as RFC 7662
 *   section 2.1 asks of a protected resource; anything else gets 401 and is counted as refused.
 *   Mode auth cannot (the one Authorization header carries the token), so it is let through.
 * - An active token answers `{"active":true,"username":...,"scope":...,"exp":...,"client_id":...}`;
 *   an unknown, expired or revoked one `{"active":false}` and nothing else (section 2.2).
 *
 * Tokens are kept only in memory and never printed; `lookups` records who asked about what
 * without the token itself.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface TokenGrant {
  readonly user: string;
  /** Absolute expiry (ms since the epoch); absent: the token does not expire. */
  expiresAt: number | undefined;
  revoked: boolean;
  readonly scope: string;
}

export interface IntrospectionLookup {
  readonly at: number;
  readonly method: string;
  /** The user the token belongs to, or undefined for a token the table does not have. */
  readonly user: string | undefined;
  readonly active: boolean;
  /** Why it was inactive: unknown, expired or revoked. */
  readonly reason: 'ok' | 'unknown' | 'expired' | 'revoked';
}

export interface IntrospectionServer {
  readonly port: number;
  /** The endpoint, without credentials. */
  readonly url: string;
  /**
   * Dovecot's introspection_url for an introspection_mode: post and get carry the client's Basic
   * credentials in the URL (get also ends in `?token=`, as Dovecot appends the token); auth has
   * none, because Dovecot would then send Basic instead of the bearer token.
   */
  urlFor(mode: 'post' | 'get' | 'auth'): string;
  readonly clientId: string;
  /** Adds (or replaces) a token for `user`, valid for `ttlMs` (default: no expiry). */
  addToken(token: string, user: string, opts?: { ttlMs?: number; scope?: string }): void;
  /** The token's expiry moves into the past: it answers inactive from now on. */
  expire(token: string): void;
  /** The token is revoked: it answers inactive from now on. */
  revoke(token: string): void;
  /** Every introspection request that reached the token table (authenticated as the client). */
  readonly lookups: readonly IntrospectionLookup[];
  /** Requests refused before the table: wrong or missing client credentials, bad method or path. */
  readonly refused: number;
  /** All HTTP requests, whatever came of them. */
  readonly requests: number;
  /** While true, every request gets 503 (the authorization server is down). */
  unavailable: boolean;
  close(): Promise<void>;
}

const PATH = '/introspect';
const MAX_BODY = 64 * 1024;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startIntrospectionServer(opts: { clientId?: string; clientSecret?: string } = {}): Promise<IntrospectionServer> {
  const clientId = opts.clientId ?? 'dovecot';
  const clientSecret = opts.clientSecret ?? 'introspection-client-secret';
  const expectedAuth = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
  const tokens = new Map<string, TokenGrant>();
  const lookups: IntrospectionLookup[] = [];
  const sockets = new Set<Socket>();
  let refused = 0;
  let requests = 0;

  const tokenFrom = async (req: IncomingMessage, url: URL): Promise<string | undefined> => {
    if (req.method === 'POST') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') return undefined;
      return new URLSearchParams(await readBody(req)).get('token') ?? undefined;
    }
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (bearer) return bearer[1];
    return url.searchParams.get('token') ?? undefined;
  };

  let unavailable = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    if (unavailable) {
      send(res, 503, { error: 'temporarily_unavailable' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== PATH || (req.method !== 'POST' && req.method !== 'GET')) {
      refused++;
      send(res, 404, { error: 'not_found' });
      return;
    }
    // Mode auth carries the token itself in Authorization, so it cannot also carry the client's
    // credentials there; only POST and GET with ?token= must authenticate as the client.
    const bearerMode = req.method === 'GET' && /^Bearer /i.test(req.headers.authorization ?? '');
    if (!bearerMode && req.headers.authorization !== expectedAuth) {
      refused++;
      send(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="introspection"' });
      return;
    }
    const token = await tokenFrom(req, url);
    if (token === undefined || token === '') {
      refused++;
      send(res, 400, { error: 'invalid_request' });
      return;
    }
    const grant = tokens.get(token);
    const now = Date.now();
    const reason: IntrospectionLookup['reason'] = !grant ? 'unknown' : grant.revoked ? 'revoked' : grant.expiresAt !== undefined && grant.expiresAt <= now ? 'expired' : 'ok';
    lookups.push({ at: now, method: req.method, user: grant?.user, active: reason === 'ok', reason });
    if (reason !== 'ok' || !grant) {
      send(res, 200, { active: false });
      return;
    }
    send(res, 200, {
      active: true,
      username: grant.user,
      scope: grant.scope,
      client_id: 'vmbridge',
      token_type: 'Bearer',
      ...(grant.expiresAt !== undefined ? { exp: Math.floor(grant.expiresAt / 1000) } : {}),
    });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the introspection server has no port');
  const port = address.port;

  return {
    port,
    url: `http://127.0.0.1:${port}${PATH}`,
    urlFor(mode) {
      if (mode === 'auth') return `http://127.0.0.1:${port}${PATH}`;
      const withClient = `http://${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}@127.0.0.1:${port}${PATH}`;
      return mode === 'get' ? `${withClient}?token=` : withClient;
    },
    clientId,
    addToken(token, user, o = {}) {
      tokens.set(token, { user, expiresAt: o.ttlMs === undefined ? undefined : Date.now() + o.ttlMs, revoked: false, scope: o.scope ?? 'imap' });
    },
    expire(token) {
      const grant = tokens.get(token);
      if (!grant) throw new Error('expire: no such token');
      grant.expiresAt = Date.now() - 1_000;
    },
    revoke(token) {
      const grant = tokens.get(token);
      if (!grant) throw new Error('revoke: no such token');
      grant.revoked = true;
    },
    lookups,
    get refused() {
      return refused;
    },
    get requests() {
      return requests;
    },
    get unavailable() {
      return unavailable;
    },
    set unavailable(v: boolean) {
      unavailable = v;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
