/**
 * sendSipNotify against a tiny scripted UDP peer on 127.0.0.1: the exact request, the RFC 3261
 * retransmission schedule (counted in packets, timed only with generous lower bounds), Digest
 * answers recomputed here independently, and hostile values refused before anything is sent.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { MessageSummaryError, UnsafeSipValueError } from '../../src/mwi/message-summary.js';
import {
  sendSipNotify,
  SipAuthError,
  SipNotifyError,
  SipResponseError,
  SipTimeoutError,
  SipTransportError,
  type SipTarget,
} from '../../src/mwi/sip-notify.js';

interface Packet {
  readonly raw: Buffer;
  readonly text: string;
  readonly at: number;
  readonly requestLine: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  header(name: string): string | undefined;
}

type Script = (p: Packet, index: number) => string | string[] | undefined;

interface Peer {
  readonly port: number;
  readonly packets: Packet[];
  close(): Promise<void>;
}

const peers: Peer[] = [];
after(async () => {
  await Promise.all(peers.map((p) => p.close()));
});

function parsePacket(raw: Buffer): Packet {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, split).toString('latin1');
  const [requestLine = '', ...lines] = head.split('\r\n');
  const headers = lines.map((l): readonly [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
  return {
    raw,
    text: raw.toString('latin1'),
    at: performance.now(),
    requestLine,
    headers,
    body: raw.subarray(split + 4),
    header: (name) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
  };
}

/** A response to `p` with its Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6.2). */
function reply(p: Packet, statusLine: string, extra: readonly string[] = []): string {
  return [
    `SIP/2.0 ${statusLine}`,
    `Via: ${p.header('Via')};received=127.0.0.1`,
    `From: ${p.header('From')}`,
    `To: ${p.header('To')}${statusLine.startsWith('100') ? '' : ';tag=peer1'}`,
    `Call-ID: ${p.header('Call-ID')}`,
    `CSeq: ${p.header('CSeq')}`,
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

async function startPeer(script: Script): Promise<Peer> {
  const socket: Socket = createSocket('udp4');
  const packets: Packet[] = [];
  socket.on('message', (raw: Buffer, from: RemoteInfo) => {
    const p = parsePacket(raw);
    packets.push(p);
    const out = script(p, packets.length - 1);
    for (const r of out === undefined ? [] : Array.isArray(out) ? out : [out]) socket.send(r, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let closed = false;
  const peer: Peer = {
    port: socket.address().port,
    packets,
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
  peers.push(peer);
  return peer;
}

const target = (port: number, more: Partial<SipTarget> = {}): SipTarget => ({
  host: '127.0.0.1',
  port,
  transport: 'udp',
  toUri: 'sip:1000@pbx.example',
  fromUri: 'sip:vmbridge@pbx.example',
  ...more,
});

// RFC 3261 default timers for tests that are not about retransmission: a busy machine must not cause one.
const CALM = { t1Ms: 500, t2Ms: 4000 } as const;

function digestParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const m of value.replace(/^Digest\s+/i, '').matchAll(/([a-z-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/gi)) {
    params.set((m[1] ?? '').toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
  }
  return params;
}

/** RFC 7616 §3.4.1, computed here without the module's code. */
function expectedResponse(hash: 'md5' | 'sha256', p: Map<string, string>, password: string, method: string): string {
  const H = (s: string): string => createHash(hash).update(s).digest('hex');
  const ha1 = H(`${p.get('username')}:${p.get('realm')}:${password}`);
  const ha2 = H(`${method}:${p.get('uri')}`);
  if (!p.has('qop')) return H(`${ha1}:${p.get('nonce')}:${ha2}`);
  return H(`${ha1}:${p.get('nonce')}:${p.get('nc')}:${p.get('cnonce')}:${p.get('qop')}:${ha2}`);
}

describe('sendSipNotify on the wire', () => {
  it('sends one NOTIFY laid out exactly as documented', async () => {
    const peer = await startPeer((p) => reply(p, '200 OK'));
    const result = await sendSipNotify(
      target(peer.port),
      { newCount: 2, oldCount: 5, urgentNew: 1, account: 'sip:1000@pbx.example' },
      CALM,
    );
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 1);
    assert.ok(result.ms >= 0);
    assert.equal(peer.packets.length, 1);
    const p = peer.packets[0];
    assert.ok(p);
    assert.equal(p.requestLine, 'NOTIFY sip:1000@pbx.example SIP/2.0');
    assert.deepEqual(
      p.headers.map(([n]) => n),
      ['Via', 'Max-Forwards', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Event', 'Subscription-State', 'User-Agent', 'Content-Type', 'Content-Length'],
    );
    const via = /^SIP\/2\.0\/UDP 127\.0\.0\.1:([0-9]+);branch=(z9hG4bK[0-9a-f]{20});rport$/.exec(p.header('Via') ?? '');
    assert.ok(via, p.header('Via'));
    assert.equal(p.header('Max-Forwards'), '70');
    assert.match(p.header('From') ?? '', /^<sip:vmbridge@pbx\.example>;tag=[0-9a-f]{16}$/);
    assert.equal(p.header('To'), '<sip:1000@pbx.example>');
    assert.match(p.header('Call-ID') ?? '', /^[0-9a-f]{32}$/);
    assert.equal(p.header('CSeq'), '1 NOTIFY');
    assert.equal(p.header('Contact'), `<sip:vmbridge@127.0.0.1:${via[1]}>`);
    assert.equal(p.header('Event'), 'message-summary');
    assert.equal(p.header('Subscription-State'), 'terminated');
    assert.equal(p.header('Content-Type'), 'application/simple-message-summary');
    assert.equal(
      p.body.toString('latin1'),
      'Messages-Waiting: yes\r\nMessage-Account: sip:1000@pbx.example\r\nVoice-Message: 2/5 (1/0)\r\n',
    );
    // Content-Length counts the bytes after the blank line, exactly.
    assert.equal(Number(p.header('Content-Length')), p.body.length);
    assert.ok(p.text.includes('\r\n\r\n') && !/[^\r]\n/.test(p.text), 'every line ends in CRLF');
  });

  it('writes Subscription-State active with expires when asked', async () => {
    const peer = await startPeer((p) => reply(p, '200 OK'));
    await sendSipNotify(target(peer.port), { newCount: 0, oldCount: 0 }, { ...CALM, subscriptionState: 'active', activeExpiresSeconds: 600 });
    assert.equal(peer.packets[0]?.header('Subscription-State'), 'active;expires=600');
  });

  it('uses localHost in Via and Contact', async () => {
    const peer = await startPeer((p) => reply(p, '200 OK'));
    await sendSipNotify(target(peer.port, { localHost: 'vmbridge.example' }), { newCount: 1, oldCount: 0 }, CALM);
    const p = peer.packets[0];
    assert.match(p?.header('Via') ?? '', /^SIP\/2\.0\/UDP vmbridge\.example:[0-9]+;branch=/);
    assert.match(p?.header('Contact') ?? '', /^<sip:vmbridge@vmbridge\.example:[0-9]+>$/);
  });

  it('retransmits an ignored request, identical each time, at growing intervals', async () => {
    const peer = await startPeer((p, i) => (i < 2 ? undefined : reply(p, '200 OK')));
    const started = performance.now();
    const result = await sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, { t1Ms: 40, t2Ms: 4000 });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 3);
    assert.equal(peer.packets.length, 3);
    const [a, b, c] = peer.packets;
    assert.ok(a && b && c);
    assert.ok(a.raw.equals(b.raw) && b.raw.equals(c.raw), 'a retransmission is the same request');
    // Timer E: T1, then 2*T1, so the third send is no earlier than 3*T1 after the start (a fixed
    // interval would send it at 2*T1). Timers never fire early and a packet arrives after it is
    // sent, so only bounds from the start are safe: gaps between arrivals shrink when one is late.
    assert.ok(b.at - started >= 38, `second send ${b.at - started} ms after the start`);
    assert.ok(c.at - started >= 118, `third send ${c.at - started} ms after the start`);
  });

  it('gives up at Timer F with a typed error, retransmitting with doubling capped at T2', async () => {
    const peer = await startPeer(() => undefined);
    const started = performance.now();
    const err = await sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, { t1Ms: 20, t2Ms: 80 }).then(
      () => assert.fail('should time out'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipTimeoutError, String(err));
    assert.equal(err.code, 'SIP_TIMEOUT');
    assert.ok(performance.now() - started >= 64 * 20 - 2, 'Timer F is 64*T1');
    // Sends at 0, 20, 60, 140, then every 80 ms until 1280: at most 18. Doubling without the cap
    // would give 7; no doubling would give 64. Late timers on a busy machine only lower the count.
    assert.equal(peer.packets.length, err.attempts);
    assert.ok(err.attempts <= 18 && err.attempts >= 10, `attempts ${err.attempts}`);
  });

  it('slows to T2 after a provisional response, and keeps retransmitting', async () => {
    const peer = await startPeer((p, i) => (i === 0 ? reply(p, '100 Trying') : i < 2 ? undefined : reply(p, '200 OK')));
    const result = await sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, { t1Ms: 20, t2Ms: 300 });
    assert.equal(result.status, 200);
    assert.equal(peer.packets.length, 3);
    const [, b, c] = peer.packets;
    assert.ok(b && c);
    // Without the 100 the second gap would be 40 ms; in Proceeding it is T2.
    assert.ok(c.at - b.at >= 298, `gap after 100 Trying: ${c.at - b.at}`);
  });

  it('ignores responses that belong to another transaction', async () => {
    const peer = await startPeer((p, i) =>
      i === 0 ? reply(p, '200 OK').replace(/branch=z9hG4bK[0-9a-f]+/, 'branch=z9hG4bKforeign') : reply(p, '200 OK'),
    );
    const result = await sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, CALM);
    assert.equal(result.attempts, 2);
  });

  it('answers a 401 with MD5 Digest, qop=auth: CSeq+1, new branch, same Call-ID and From', async () => {
    const password = 'pa"ss\\word';
    const peer = await startPeer((p, i) =>
      i === 0
        ? reply(p, '401 Unauthorized', ['WWW-Authenticate: Digest realm="pbx.example", nonce="n0nce/+=", opaque="op\\"aque", qop="auth,auth-int", algorithm=MD5'])
        : reply(p, '200 OK'),
    );
    const result = await sendSipNotify(target(peer.port, { username: 'bridge', password }), { newCount: 3, oldCount: 1 }, CALM);
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 2);
    const [first, second] = peer.packets;
    assert.ok(first && second);
    assert.equal(second.header('CSeq'), '2 NOTIFY');
    assert.equal(second.header('Call-ID'), first.header('Call-ID'));
    assert.equal(second.header('From'), first.header('From'));
    assert.notEqual(/branch=([^;]+)/.exec(second.header('Via') ?? '')?.[1], /branch=([^;]+)/.exec(first.header('Via') ?? '')?.[1]);
    assert.match(second.header('Via') ?? '', /branch=z9hG4bK/);
    assert.equal(second.body.toString(), first.body.toString());
    const auth = second.header('Authorization');
    assert.ok(auth, 'Authorization header present');
    const p = digestParams(auth);
    assert.equal(p.get('username'), 'bridge');
    assert.equal(p.get('realm'), 'pbx.example');
    assert.equal(p.get('nonce'), 'n0nce/+=');
    assert.equal(p.get('opaque'), 'op"aque');
    assert.equal(p.get('uri'), 'sip:1000@pbx.example');
    assert.equal(p.get('algorithm'), 'MD5');
    assert.equal(p.get('qop'), 'auth');
    assert.equal(p.get('nc'), '00000001');
    assert.match(p.get('cnonce') ?? '', /^[0-9a-f]{16}$/);
    assert.equal(p.get('response'), expectedResponse('md5', p, password, 'NOTIFY'));
    assert.ok(!second.text.includes(password), 'the password itself is never sent');
  });

  it('answers a 407 with Proxy-Authorization, taking the topmost algorithm it supports (RFC 8760)', async () => {
    const peer = await startPeer((p, i) =>
      i === 0
        ? reply(p, '407 Proxy Authentication Required', [
            'Proxy-Authenticate: Digest realm="proxy", nonce="a", algorithm=SHA-512-256, qop="auth"',
            'Proxy-Authenticate: Digest realm="proxy", nonce="b", algorithm=SHA-256, qop="auth"',
            'Proxy-Authenticate: Digest realm="proxy", nonce="c", algorithm=MD5, qop="auth"',
          ])
        : reply(p, '200 OK'),
    );
    await sendSipNotify(target(peer.port, { password: 's3cret' }), { newCount: 1, oldCount: 0 }, CALM);
    const second = peer.packets[1];
    assert.ok(second);
    assert.equal(second.header('Authorization'), undefined);
    const p = digestParams(second.header('Proxy-Authorization') ?? '');
    assert.equal(p.get('algorithm'), 'SHA-256');
    assert.equal(p.get('nonce'), 'b');
    assert.equal(p.get('username'), 'vmbridge', 'username defaults to the From user');
    assert.equal(p.get('response'), expectedResponse('sha256', p, 's3cret', 'NOTIFY'));
    assert.equal(p.get('response')?.length, 64);
  });

  it('answers a challenge without qop in the RFC 2069 form', async () => {
    const peer = await startPeer((p, i) =>
      i === 0 ? reply(p, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r", nonce="xyz"']) : reply(p, '200 OK'),
    );
    await sendSipNotify(target(peer.port, { password: 'pw' }), { newCount: 1, oldCount: 0 }, CALM);
    const p = digestParams(peer.packets[1]?.header('Authorization') ?? '');
    assert.equal(p.has('qop'), false);
    assert.equal(p.has('cnonce'), false);
    assert.equal(p.get('response'), expectedResponse('md5', p, 'pw', 'NOTIFY'));
  });

  it('stops with SipAuthError when the answer is challenged again, without leaking the password', async () => {
    const password = 'never-in-an-error';
    const peer = await startPeer((p) => reply(p, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"']));
    const err = await sendSipNotify(target(peer.port, { password }), { newCount: 1, oldCount: 0 }, CALM).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipAuthError, String(err));
    assert.equal(err.code, 'SIP_AUTH');
    assert.equal(err.status, 401);
    // Counted by transaction: on a busy machine a retransmission of either request may also arrive.
    assert.deepEqual([...new Set(peer.packets.map((p) => p.header('CSeq')))].length, 2, 'one authenticated retry only');
    assert.ok(!err.message.includes(password) && !JSON.stringify(err).includes(password) && !String(err.stack).includes(password));
  });

  it('stops with SipAuthError when challenged and no password is configured', async () => {
    const peer = await startPeer((p) => reply(p, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r", nonce="n"']));
    await assert.rejects(sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, CALM), SipAuthError);
    assert.equal(peer.packets.length, 1);
  });

  it('refuses a challenge whose values would smuggle control characters back', async () => {
    const peer = await startPeer((p) => reply(p, '401 Unauthorized', ['WWW-Authenticate: Digest realm="r\u0001", nonce="n"']));
    await assert.rejects(sendSipNotify(target(peer.port, { password: 'pw' }), { newCount: 1, oldCount: 0 }, CALM), SipAuthError);
    assert.equal(peer.packets.length, 1);
  });

  it('reports any other final response with its status line', async () => {
    const peer = await startPeer((p) => reply(p, '486 Busy Here'));
    const err = await sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, CALM).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipResponseError, String(err));
    assert.equal(err.status, 486);
    assert.equal(err.statusLine, 'SIP/2.0 486 Busy Here');
    assert.equal(err.code, 'SIP_RESPONSE');
    assert.equal(err.target, `127.0.0.1:${peer.port}`);
  });

  it('fails fast with SipTransportError when nothing listens on the port', async () => {
    const peer = await startPeer(() => undefined);
    const port = peer.port;
    await peer.close();
    const started = performance.now();
    await assert.rejects(sendSipNotify(target(port), { newCount: 1, oldCount: 0 }, { t1Ms: 500 }), SipTransportError);
    assert.ok(performance.now() - started < 5_000, 'ICMP port unreachable ends it long before Timer F');
  });

  it('can be aborted', async () => {
    const peer = await startPeer(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(
      sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0 }, { ...CALM, signal: controller.signal }),
      (e: unknown) => e instanceof SipNotifyError && e.code === 'SIP_ABORTED',
    );
  });
});

describe('sendSipNotify refuses hostile or broken values before sending anything', () => {
  const cases: Array<[string, Partial<SipTarget>]> = [
    ['CRLF in the To user', { toUri: 'sip:1000\r\nX-Evil: 1@pbx.example' }],
    ['LF in the To host', { toUri: 'sip:1000@pbx.example\nX-Evil: 1' }],
    ['NUL in the To user', { toUri: 'sip:10\u000000@pbx.example' }],
    ['CR in the From URI', { fromUri: 'sip:vm@pbx.example\rX: 1' }],
    ['a display name in the From URI', { fromUri: '"Eve" <sip:vm@pbx.example>' }],
    ['URI parameters', { toUri: 'sip:1000@pbx.example;maddr=evil.example' }],
    ['a quote in the user', { toUri: 'sip:10"00@pbx.example' }],
    ['CRLF in the digest username', { username: 'bridge\r\nX: 1', password: 'pw' }],
    ['a quote in the digest username', { username: 'bri"dge', password: 'pw' }],
    ['CRLF in localHost', { localHost: '127.0.0.1\r\nX: 1' }],
    ['a space in localHost', { localHost: 'my host' }],
    ['TAB in the target host', { host: '127.0.0.1\t' }],
    ['an empty password', { password: '' }],
  ];
  for (const [name, more] of cases) {
    it(name, async () => {
      const peer = await startPeer((p) => reply(p, '200 OK'));
      await assert.rejects(sendSipNotify(target(peer.port, more), { newCount: 1, oldCount: 0 }, CALM), UnsafeSipValueError);
      assert.equal(peer.packets.length, 0);
    });
  }

  it('a CRLF in the account, and counts that are unknown or negative', async () => {
    const peer = await startPeer((p) => reply(p, '200 OK'));
    await assert.rejects(
      sendSipNotify(target(peer.port), { newCount: 1, oldCount: 0, account: 'sip:1000@pbx.example\r\nMessages-Waiting: no' }, CALM),
      UnsafeSipValueError,
    );
    await assert.rejects(sendSipNotify(target(peer.port), { newCount: -1, oldCount: 0 }, CALM), MessageSummaryError);
    await assert.rejects(sendSipNotify(target(peer.port), { newCount: Number.NaN, oldCount: 0 }, CALM), MessageSummaryError);
    assert.equal(peer.packets.length, 0);
  });

  it('transports and schemes it cannot honour', async () => {
    const peer = await startPeer((p) => reply(p, '200 OK'));
    const unsupported = (e: unknown): boolean => e instanceof SipNotifyError && e.code === 'SIP_UNSUPPORTED';
    await assert.rejects(sendSipNotify(target(peer.port, { toUri: 'sips:1000@pbx.example' }), { newCount: 1, oldCount: 0 }, CALM), unsupported);
    await assert.rejects(sendSipNotify(target(peer.port, { transport: 'tcp', toUri: 'sips:1000@pbx.example' }), { newCount: 1, oldCount: 0 }, CALM), unsupported);
    await assert.rejects(
      sendSipNotify({ ...target(peer.port), transport: 'sctp' } as unknown as SipTarget, { newCount: 1, oldCount: 0 }, CALM),
      unsupported,
    );
    await assert.rejects(sendSipNotify(target(0), { newCount: 1, oldCount: 0 }, CALM), UnsafeSipValueError);
    assert.equal(peer.packets.length, 0);
  });

  it('never echoes a password in a validation error', async () => {
    const err = await sendSipNotify(
      target(9, { password: 'hunter2-secret', username: 'bad user' }),
      { newCount: 1, oldCount: 0 },
      CALM,
    ).then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.ok(err instanceof UnsafeSipValueError);
    assert.ok(!String((err as Error).message).includes('hunter2-secret'));
  });
});
