/**
 * sendSipNotify against a real SIP server (a private Kamailio on 127.0.0.1): the NOTIFY is
 * accepted by its parser, its Digest check passes (MD5 and SHA-256), and what arrives carries
 * exactly the Messages-Waiting and Voice-Message lines that were meant. Over UDP, TCP and TLS:
 * Kamailio's log says which transport each request came over; TLS certificates come from a
 * private CA made for the test (test/support/tls-ca.ts), and one for another host or from another
 * CA is refused before anything is sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { sendSipNotify, SipAuthError, SipTransportError, type SipTarget } from '../../src/mwi/sip-notify.js';
import { createSender } from '../../src/mwi/targets.js';
import { TlsCertificateError } from '../../src/tls.js';
import { memoryLogger } from '../support/memory-log.js';
import { freePort } from '../support/ports.js';
import { startSipPeer, type ReceivedRequest, type SipPeer } from '../support/sip-peer.js';
import { testPki, type TestPki } from '../support/tls-ca.js';

const targetFor = (peer: SipPeer, more: Partial<SipTarget> = {}): SipTarget => ({
  host: peer.host,
  port: peer.port,
  transport: 'udp',
  toUri: 'sip:1000@vmbridge.test',
  fromUri: 'sip:vmbridge@vmbridge.test',
  ...more,
});

const bodyLines = (r: ReceivedRequest | undefined): string[] => (r?.body ?? '').split('\r\n').filter(Boolean);

describe('SIP NOTIFY to Kamailio without authentication', () => {
  let peer: SipPeer;
  before(async () => {
    peer = await startSipPeer({ challenge: false });
  });
  after(async () => {
    await peer?.stop();
  });

  it('delivers the message summary in one request', async () => {
    const result = await sendSipNotify(targetFor(peer), { newCount: 3, oldCount: 2, urgentNew: 1, account: 'sip:1000@vmbridge.test' });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 1);
    const got = await peer.received();
    assert.equal(got.length, 1);
    const r = got[0];
    assert.equal(r?.answered, 200);
    assert.equal(r?.requestLine, 'NOTIFY sip:1000@vmbridge.test SIP/2.0');
    assert.equal(r?.header('Event'), 'message-summary');
    assert.equal(r?.header('Subscription-State'), 'terminated');
    assert.equal(r?.header('Content-Type'), 'application/simple-message-summary');
    assert.deepEqual(bodyLines(r), ['Messages-Waiting: yes', 'Message-Account: sip:1000@vmbridge.test', 'Voice-Message: 3/2 (1/0)']);
    assert.equal(Number(r?.header('Content-Length')), Buffer.byteLength(r?.body ?? ''));
  });

  it('turns the lamp off with Messages-Waiting: no', async () => {
    await sendSipNotify(targetFor(peer), { newCount: 0, oldCount: 4 });
    const got = await peer.received();
    assert.deepEqual(bodyLines(got[got.length - 1]), ['Messages-Waiting: no', 'Voice-Message: 0/4 (0/0)']);
  });
});

for (const algorithm of ['MD5', 'SHA-256'] as const) {
  describe(`SIP NOTIFY to Kamailio with ${algorithm} Digest`, () => {
    let peer: SipPeer;
    before(async () => {
      peer = await startSipPeer({ username: 'bridge', algorithm });
    });
    after(async () => {
      await peer?.stop();
    });

    it('is challenged once, then accepted with the right lines', async () => {
      const result = await sendSipNotify(targetFor(peer, { username: peer.username, password: peer.password }), {
        newCount: 5,
        oldCount: 1,
        urgentNew: 2,
        urgentOld: 1,
      });
      assert.equal(result.status, 200);
      assert.equal(result.attempts, 2);
      const got = await peer.received();
      assert.deepEqual(got.map((r) => r.answered), [401, 200]);
      const [first, second] = got;
      assert.equal(first?.header('Authorization'), undefined);
      const auth = second?.header('Authorization') ?? '';
      assert.match(auth, new RegExp(`algorithm=${algorithm}(,|$)`));
      assert.match(auth, /qop=auth(,|$)/);
      assert.equal(second?.header('CSeq'), '2 NOTIFY');
      assert.equal(second?.header('Call-ID'), first?.header('Call-ID'));
      assert.deepEqual(bodyLines(second), ['Messages-Waiting: yes', 'Voice-Message: 5/1 (2/1)']);
    });

    it('rejects a wrong password with SipAuthError', async () => {
      const before = (await peer.received()).length;
      await assert.rejects(
        sendSipNotify(targetFor(peer, { username: peer.username, password: `${peer.password}-wrong` }), { newCount: 1, oldCount: 0 }),
        (err: unknown) => err instanceof SipAuthError && err.status === 401 && !err.message.includes(peer.password),
      );
      const got = (await peer.received()).slice(before);
      assert.deepEqual(got.map((r) => r.answered), [401, 401]);
    });

    it('rejects a wrong username with SipAuthError', async () => {
      await assert.rejects(
        sendSipNotify(targetFor(peer, { username: 'someone-else', password: peer.password }), { newCount: 1, oldCount: 0 }),
        SipAuthError,
      );
    });
  });
}

describe('SIP NOTIFY to Kamailio over TCP, with Digest', () => {
  let peer: SipPeer;
  before(async () => {
    peer = await startSipPeer({ username: 'bridge' });
  });
  after(async () => {
    await peer?.stop();
  });

  it('is challenged, then accepted, both requests over TCP', async () => {
    const result = await sendSipNotify(targetFor(peer, { transport: 'tcp', username: peer.username, password: peer.password }), { newCount: 2, oldCount: 3, urgentNew: 1 });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 2, 'the request and the authenticated retry, no retransmission');
    const got = await peer.received();
    assert.deepEqual(got.map((r) => [r.answered, r.transport]), [[401, 'tcp'], [200, 'tcp']]);
    const [first, second] = got;
    assert.match(first?.header('Via') ?? '', /^SIP\/2\.0\/TCP 127\.0\.0\.1:[0-9]+;branch=z9hG4bK/);
    assert.match(first?.header('Contact') ?? '', /;transport=tcp>$/);
    // One connection for both: the same local port in both Vias.
    assert.equal(/:([0-9]+);/.exec(second?.header('Via') ?? '')?.[1], /:([0-9]+);/.exec(first?.header('Via') ?? '')?.[1]);
    assert.equal(second?.header('CSeq'), '2 NOTIFY');
    assert.deepEqual(bodyLines(second), ['Messages-Waiting: yes', 'Voice-Message: 2/3 (1/0)']);
  });

  it('keeps UDP and TCP apart on the same port', async () => {
    const before = (await peer.received()).length;
    await sendSipNotify(targetFor(peer, { username: peer.username, password: peer.password }), { newCount: 0, oldCount: 1 });
    assert.deepEqual((await peer.received()).slice(before).map((r) => r.transport), ['udp', 'udp']);
  });

  it('rejects a wrong password with SipAuthError over TCP too', async () => {
    await assert.rejects(
      sendSipNotify(targetFor(peer, { transport: 'tcp', username: peer.username, password: `${peer.password}-wrong` }), { newCount: 1, oldCount: 0 }),
      (err: unknown) => err instanceof SipAuthError && err.status === 401 && !err.message.includes(peer.password),
    );
  });

  it('reports a refused connection as SipTransportError naming the target', async () => {
    const port = await freePort();
    const err = await sendSipNotify({ ...targetFor(peer, { transport: 'tcp' }), port }, { newCount: 1, oldCount: 0 }).then(
      () => assert.fail('nothing listens there'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipTransportError, String(err));
    assert.equal(err.message, `SIP NOTIFY to 127.0.0.1:${port}: TCP connection refused: nothing listens on 127.0.0.1 port ${port}`);
  });
});

describe('SIP NOTIFY to Kamailio over TLS', () => {
  let pki: TestPki;
  let peer: SipPeer;
  let wrongHost: SipPeer;
  let otherCa: SipPeer;
  let dir: string;
  before(async () => {
    pki = await testPki();
    [peer, wrongHost, otherCa] = await Promise.all([
      startSipPeer({ username: 'bridge', algorithm: 'SHA-256', tls: pki.server }),
      startSipPeer({ challenge: false, tls: pki.wrongHost }),
      startSipPeer({ challenge: false, tls: pki.otherCaServer }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'vmb-sip-tls-'));
  });
  after(async () => {
    await Promise.all([peer?.stop(), wrongHost?.stop(), otherCa?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tlsTarget = (p: SipPeer, more: Partial<SipTarget> = {}): SipTarget =>
    targetFor(p, { transport: 'tls', port: p.tlsPort ?? 0, tlsSettingsKey: 'mwi.targets.0.tls', ...more });

  /** The send fails with SipTransportError whose cause is the refused certificate; nothing reached the peer. */
  async function refused(p: SipPeer, target: SipTarget, reason: RegExp): Promise<SipTransportError> {
    const before = (await p.received()).length;
    const err = await sendSipNotify(target, { newCount: 1, oldCount: 0 }).then(
      () => assert.fail('the certificate should be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SipTransportError, String(err));
    assert.equal(err.code, 'SIP_TRANSPORT');
    assert.ok(err.cause instanceof TlsCertificateError, `the cause is the refused certificate: ${err.message}`);
    assert.match(err.cause.reason, reason);
    assert.equal((await p.received()).length, before, 'no request was sent');
    return err;
  }

  it('delivers with SHA-256 Digest over TLS when caFile names the private CA', async () => {
    const result = await sendSipNotify(tlsTarget(peer, { username: peer.username, password: peer.password, tls: { rejectUnauthorized: true, caFile: pki.caFile } }), {
      newCount: 4,
      oldCount: 0,
    });
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 2);
    const got = await peer.received();
    assert.deepEqual(got.map((r) => [r.answered, r.transport]), [[401, 'tls'], [200, 'tls']]);
    assert.match(got[1]?.header('Via') ?? '', /^SIP\/2\.0\/TLS 127\.0\.0\.1:[0-9]+;branch=z9hG4bK/);
    assert.match(got[1]?.header('Contact') ?? '', /^<sips:vmbridge@127\.0\.0\.1:[0-9]+>$/);
    assert.match(got[1]?.header('Authorization') ?? '', /algorithm=SHA-256/);
    assert.deepEqual(bodyLines(got[1]), ['Messages-Waiting: yes', 'Voice-Message: 4/0 (0/0)']);
  });

  it('sends a sips: Request-URI over TLS', async () => {
    await sendSipNotify(
      tlsTarget(peer, { toUri: 'sips:1001@vmbridge.test', username: peer.username, password: peer.password, tls: { rejectUnauthorized: true, caFile: pki.caFile } }),
      { newCount: 1, oldCount: 0 },
    );
    const last = (await peer.received()).at(-1);
    assert.equal(last?.answered, 200);
    assert.equal(last?.transport, 'tls');
    assert.equal(last?.requestLine, 'NOTIFY sips:1001@vmbridge.test SIP/2.0');
  });

  it('verifies by default: without caFile the private CA is not trusted', async () => {
    const err = await refused(peer, tlsTarget(peer), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    assert.match(err.message, /^SIP NOTIFY to 127\.0\.0\.1:[0-9]+: the TLS certificate of SIP server 127\.0\.0\.1:[0-9]+ is not signed by a CA this system trusts .*set mwi\.targets\.0\.tls\.caFile/);
  });

  it('refuses a certificate for another host, from the trusted CA', async () => {
    const err = await refused(wrongHost, tlsTarget(wrongHost, { tls: { rejectUnauthorized: true, caFile: pki.caFile } }), /^ERR_TLS_CERT_ALTNAME_INVALID$/);
    assert.match(err.message, /is for another host name .*set mwi\.targets\.0\.tls\.servername/);
    // ...which tls.servername, the name it was issued for, accepts.
    await sendSipNotify(tlsTarget(wrongHost, { tls: { rejectUnauthorized: true, caFile: pki.caFile, servername: 'wrong-host.example.invalid' } }), { newCount: 1, oldCount: 0 });
    assert.equal((await wrongHost.received()).at(-1)?.transport, 'tls');
  });

  it('refuses a certificate from another CA, and caFile with that CA makes it work', async () => {
    const err = await refused(otherCa, tlsTarget(otherCa, { tls: { rejectUnauthorized: true, caFile: pki.caFile } }), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/);
    assert.ok(err.message.includes(`is not signed by the CA in mwi.targets.0.tls.caFile (${pki.caFile})`), err.message);
    const result = await sendSipNotify(tlsTarget(otherCa, { tls: { rejectUnauthorized: true, caFile: pki.otherCaFile } }), { newCount: 1, oldCount: 0 });
    assert.equal(result.status, 200);
    assert.equal((await otherCa.received()).at(-1)?.transport, 'tls');
  });

  it('publishes from the settings file: transport tls and tls.caFile, through the MWI sender', async () => {
    const passwordFile = join(dir, 'sip-password');
    await writeFile(passwordFile, `${peer.password}\n`, { mode: 0o600 });
    const file = join(dir, 'vmbridge.yaml');
    await writeFile(
      file,
      `imap:\n  host: mail.example.com\nmwi:\n  targets:\n    - name: proxy\n      kind: sip-notify\n      host: 127.0.0.1\n      port: ${peer.tlsPort}\n      transport: tls\n      tls:\n        caFile: ${pki.caFile}\n      toUri: "sips:{mailbox}@vmbridge.test"\n      fromUri: "sip:vmbridge@vmbridge.test"\n      username: ${peer.username}\n      passwordFile: ${passwordFile}\n`,
    );
    const { settings, warnings } = await loadSettings({ file, env: {}, defaultFile: join(dir, 'absent.yaml') });
    assert.deepEqual(warnings, []);
    const target = settings.mwi.targets[0];
    assert.ok(target?.kind === 'sip-notify');
    const sender = createSender(target, { log: memoryLogger().log, reconnectMaxMs: 1_000 });
    try {
      await sender.publish({ context: 'default', mailbox: '1002' }, { new: 3, old: 1, urgent: 0 });
    } finally {
      await sender.close();
    }
    const last = (await peer.received()).at(-1);
    assert.equal(last?.answered, 200);
    assert.equal(last?.transport, 'tls');
    assert.equal(last?.requestLine, 'NOTIFY sips:1002@vmbridge.test SIP/2.0');
    assert.deepEqual(bodyLines(last), ['Messages-Waiting: yes', 'Voice-Message: 3/1 (0/0)']);
  });

  it('names the target setting when the sender meets an untrusted certificate', async () => {
    const file = join(dir, 'untrusted.yaml');
    await writeFile(
      file,
      `imap:\n  host: mail.example.com\nmwi:\n  targets:\n    - { name: proxy, kind: sip-notify, host: 127.0.0.1, port: ${otherCa.tlsPort}, transport: tls, tls: { caFile: ${pki.caFile} }, toUri: "sip:{mailbox}@vmbridge.test", fromUri: "sip:vmbridge@vmbridge.test" }\n`,
    );
    const { settings } = await loadSettings({ file, env: {}, defaultFile: join(dir, 'absent.yaml') });
    const target = settings.mwi.targets[0];
    assert.ok(target?.kind === 'sip-notify');
    const sender = createSender(target, { log: memoryLogger().log, reconnectMaxMs: 1_000 });
    await assert.rejects(sender.publish({ context: 'default', mailbox: '1000' }, { new: 1, old: 0, urgent: 0 }), (err: unknown) => {
      assert.ok(err instanceof SipTransportError, String(err));
      assert.ok(err.message.includes('mwi.targets[name=proxy].tls.caFile'), err.message);
      return true;
    });
    await sender.close();
  });
});
