/**
 * SIP NOTIFY over a stream: the Content-Length framing of RFC 3261 §18.3 on its own, then
 * sendSipNotify over TCP against a scripted TCP peer on 127.0.0.1 (one write per request, no
 * retransmission, Timer F, Digest on the same connection, the Via and Contact for TCP), and the
 * connection failures that become SipTransportError naming the target.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SipFramingError, SipStreamFramer } from '../../src/mwi/sip-stream.js';
import { sendSipNotify, SipAuthError, SipTimeoutError, SipTransportError, type SipTarget } from '../../src/mwi/sip-notify.js';

const response = (status: string, body = '', extra: readonly string[] = []): string =>
  [`SIP/2.0 ${status}`, 'Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKx', 'Call-ID: c', 'CSeq: 1 NOTIFY', ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');

describe('SipStreamFramer', () => {
  it('waits for a response split across chunks, down to single bytes', () => {
    const bytes = Buffer.from(response('200 OK'));
    const framer = new SipStreamFramer();
    const got: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) got.push(...framer.push(bytes.subarray(i, i + 1)));
    assert.equal(got.length, 1);
    assert.ok(got[0]?.equals(bytes));
    assert.equal(framer.pending, 0);
  });

  it('splits two responses that arrive in one chunk, and keeps the start of a third', () => {
    const a = response('100 Trying');
    const b = response('200 OK');
    const c = response('486 Busy Here');
    const framer = new SipStreamFramer();
    const got = framer.push(Buffer.from(a + b + c.slice(0, 20)));
    assert.deepEqual(got.map((m) => m.toString()), [a, b]);
    assert.equal(framer.pending, 20);
    assert.deepEqual(framer.push(Buffer.from(c.slice(20))).map((m) => m.toString()), [c]);
  });

  it('takes a body of exactly Content-Length bytes (bytes, not characters), however it is cut', () => {
    const body = 'Messages-Waiting: yes\r\nCaf\u00e9: \u20ac\r\n';
    const msg = Buffer.from(response('401 Unauthorized', body, ['WWW-Authenticate: Digest realm="r", nonce="n"']));
    const next = Buffer.from(response('200 OK'));
    const all = Buffer.concat([msg, next]);
    for (const cut of [1, msg.length - Buffer.byteLength(body) - 1, msg.length - 3, msg.length, msg.length + 5]) {
      const framer = new SipStreamFramer();
      const got = [...framer.push(all.subarray(0, cut)), ...framer.push(all.subarray(cut))];
      assert.equal(got.length, 2, `cut at ${cut}`);
      assert.ok(got[0]?.equals(msg), `cut at ${cut}: the first message with its whole body`);
      assert.ok(got[1]?.equals(next));
    }
  });

  it('skips CRLF keep-alives between messages and reads the compact form l:', () => {
    const compact = 'SIP/2.0 200 OK\r\nv: SIP/2.0/TCP h;branch=z9hG4bKx\r\nl: 3\r\n\r\nabc';
    const framer = new SipStreamFramer();
    const got = framer.push(Buffer.from(`\r\n\r\n${compact}\r\n`));
    assert.deepEqual(got.map((m) => m.toString()), [compact]);
    assert.equal(framer.pending, 0);
  });

  it('refuses a message without Content-Length, a bad one, two that differ, and one too large', () => {
    assert.throws(() => new SipStreamFramer().push(Buffer.from('SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n\r\n')), SipFramingError);
    assert.throws(() => new SipStreamFramer().push(Buffer.from('SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n')), SipFramingError);
    assert.throws(() => new SipStreamFramer().push(Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nab')), SipFramingError);
    assert.throws(() => new SipStreamFramer(100).push(Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 500\r\n\r\n')), SipFramingError);
    assert.throws(() => new SipStreamFramer(100).push(Buffer.alloc(200, 'a')), SipFramingError, 'a head that never ends');
  });
});

// ------------------------------------------------------------------------------------------

interface Request {
  readonly text: string;
  readonly connection: number;
  header(name: string): string | undefined;
}

/** What the peer writes back for one request: text chunks, written with a short pause between. */
type Script = (r: Request, index: number, socket: Socket) => string[] | undefined;

interface TcpPeer {
  readonly port: number;
  readonly requests: Request[];
  connections: number;
  close(): Promise<void>;
}

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

function answer(r: Request, statusLine: string, extra: readonly string[] = []): string {
  return [
    `SIP/2.0 ${statusLine}`,
    `Via: ${r.header('Via')};received=127.0.0.1`,
    `From: ${r.header('From')}`,
    `To: ${r.header('To')};tag=peer1`,
    `Call-ID: ${r.header('Call-ID')}`,
    `CSeq: ${r.header('CSeq')}`,
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

async function startTcpPeer(script: Script): Promise<TcpPeer> {
  const requests: Request[] = [];
  const peer: TcpPeer = { port: 0, requests, connections: 0, close: async () => undefined };
  const server = createServer((socket) => {
    const connection = ++peer.connections;
    const framer = new SipStreamFramer();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const m of framer.push(chunk)) {
        const text = m.toString('utf8');
        const lines = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
        const r: Request = {
          text,
          connection,
          header: (name) => lines.find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.replace(/^[^:]*:\s*/, ''),
        };
        requests.push(r);
        const chunks = script(r, requests.length - 1, socket) ?? [];
        void (async () => {
          for (const c of chunks) {
            if (socket.destroyed) return;
            socket.write(c);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })();
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return Object.assign(peer, { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
}

const tcpTarget = (port: number, more: Partial<SipTarget> = {}): SipTarget => ({
  host: '127.0.0.1',
  port,
  transport: 'tcp',
  toUri: 'sip:1000@pbx.example',
  fromUri: 'sip:vmbridge@pbx.example',
  ...more,
});

describe('sendSipNotify over TCP', () => {
  it('writes one request with a TCP Via and a transport=tcp Contact, and reads a response cut in pieces', async () => {
    const peer = await startTcpPeer((r) => {
      const a = answer(r, '100 Trying');
      const b = answer(r, '200 OK');
      // 100 and the start of 200 in one write, the rest of 200 byte by byte in two more.
      return [a + b.slice(0, 30), b.slice(30, 31), b.slice(31)];
    });
    const result = await sendSipNotify(tcpTarget(peer.port), { newCount: 2, oldCount: 1 }, { t1Ms: 500 });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 1);
    assert.equal(peer.requests.length, 1);
    const r = peer.requests[0];
    const via = /^SIP\/2\.0\/TCP 127\.0\.0\.1:([0-9]+);branch=z9hG4bK[0-9a-f]{20};rport$/.exec(r?.header('Via') ?? '');
    assert.ok(via, r?.header('Via'));
    assert.equal(r?.header('Contact'), `<sip:vmbridge@127.0.0.1:${via[1]};transport=tcp>`);
    assert.equal(Number(r?.header('Content-Length')), Buffer.byteLength(r?.text.slice(r.text.indexOf('\r\n\r\n') + 4) ?? ''));
  });

  it('does not retransmit over TCP: one write, answered after several T1', async () => {
    const peer = await startTcpPeer((r, _i, socket) => {
      setTimeout(() => socket.write(answer(r, '200 OK')), 200);
      return [];
    });
    const result = await sendSipNotify(tcpTarget(peer.port), { newCount: 1, oldCount: 0 }, { t1Ms: 20, t2Ms: 40 });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 1);
    assert.equal(peer.requests.length, 1, 'UDP timers would have sent 6 by now');
  });

  it('ends at Timer F with SipTimeoutError after a single write', async () => {
    const peer = await startTcpPeer(() => undefined);
    const started = performance.now();
    const err = await sendSipNotify(tcpTarget(peer.port), { newCount: 1, oldCount: 0 }, { t1Ms: 10 }).then(
      () => assert.fail('should time out'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipTimeoutError, String(err));
    assert.equal(err.attempts, 1);
    assert.equal(peer.requests.length, 1);
    assert.ok(performance.now() - started >= 64 * 10 - 2, 'Timer F is 64*T1');
  });

  it('answers a challenge on the same connection', async () => {
    const peer = await startTcpPeer((r, i) => [
      i === 0 ? answer(r, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"']) : answer(r, '200 OK'),
    ]);
    const result = await sendSipNotify(tcpTarget(peer.port, { password: 'pw' }), { newCount: 1, oldCount: 0 });
    assert.equal(result.attempts, 2);
    assert.deepEqual(peer.requests.map((r) => r.connection), [1, 1]);
    assert.match(peer.requests[1]?.header('Authorization') ?? '', /^Digest /);
    assert.equal(peer.requests[1]?.header('CSeq'), '2 NOTIFY');
  });

  it('still gives SipAuthError for refused credentials', async () => {
    const peer = await startTcpPeer((r) => [answer(r, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r", nonce="n"'])]);
    await assert.rejects(sendSipNotify(tcpTarget(peer.port, { password: 'pw' }), { newCount: 1, oldCount: 0 }), SipAuthError);
  });

  it('sends a request over 1300 bytes, which UDP refuses', async () => {
    const peer = await startTcpPeer((r) => [answer(r, '200 OK')]);
    const host = Array.from({ length: 4 }, () => 'h'.repeat(60)).join('.');
    const big = { toUri: `sip:${'1'.repeat(64)}@${host}`, fromUri: `sip:${'v'.repeat(64)}@${host}` };
    const summary = { newCount: 1, oldCount: 0, account: big.toUri };
    await assert.rejects(sendSipNotify({ ...tcpTarget(peer.port, big), transport: 'udp' }, summary), (e: unknown) => (e as { code?: string }).code === 'SIP_TOO_LARGE');
    const result = await sendSipNotify(tcpTarget(peer.port, big), summary);
    assert.equal(result.status, 200);
    assert.ok(Buffer.byteLength(peer.requests[0]?.text ?? '') > 1300);
  });
});

describe('TCP and TLS connection failures are SipTransportError naming the target', () => {
  const failure = async (target: SipTarget, opts: { t1Ms?: number } = {}): Promise<SipTransportError> => {
    const err = await sendSipNotify(target, { newCount: 1, oldCount: 0 }, opts).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipTransportError, String(err));
    assert.equal(err.code, 'SIP_TRANSPORT');
    assert.equal(err.target, `127.0.0.1:${target.port}`);
    assert.ok(err.message.startsWith(`SIP NOTIFY to 127.0.0.1:${target.port}: `), err.message);
    return err;
  };

  it('connection refused', async () => {
    const peer = await startTcpPeer(() => undefined);
    await peer.close();
    const err = await failure(tcpTarget(peer.port));
    assert.match(err.message, /TCP connection refused: nothing listens on 127\.0\.0\.1 port [0-9]+$/);
  });

  it('connection reset after the request', async () => {
    const peer = await startTcpPeer((_r, _i, socket) => {
      socket.resetAndDestroy();
      return undefined;
    });
    const err = await failure(tcpTarget(peer.port));
    assert.match(err.message, /TCP connection (reset by the target|closed by the target) before a final response$/);
  });

  it('connection closed before a final response', async () => {
    const peer = await startTcpPeer((r, _i, socket) => {
      socket.end(answer(r, '100 Trying'));
      return undefined;
    });
    const err = await failure(tcpTarget(peer.port));
    assert.match(err.message, /TCP connection closed by the target before a final response$/);
  });

  it('a broken stream from the target', async () => {
    const peer = await startTcpPeer(() => ['SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n\r\n']);
    const err = await failure(tcpTarget(peer.port));
    assert.match(err.message, /broken stream: a message without Content-Length/);
  });

  it('a TLS handshake that never completes, bounded by Timer F', async () => {
    // A TCP listener that says nothing: the TLS ClientHello is never answered.
    const peer = await startTcpPeer(() => undefined);
    const started = performance.now();
    const err = await failure({ ...tcpTarget(peer.port), transport: 'tls' }, { t1Ms: 5 });
    assert.match(err.message, /no TLS connection \(TCP connect and handshake\) to 127\.0\.0\.1 port [0-9]+ within 320 ms$/);
    assert.ok(performance.now() - started < 5_000);
  });

  it('a TLS port that answers in plain text', async () => {
    const server = createServer((socket) => socket.end('SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const err = await failure({ ...tcpTarget(port), transport: 'tls' });
    assert.match(err.message, /TLS handshake failed: what came back is not TLS/);
  });
});
