/**
 * sendSipNotify against a real SIP server (a private Kamailio on 127.0.0.1): the NOTIFY is
 * accepted by its parser, its Digest check passes (MD5 and SHA-256), and what arrives carries
 * exactly the Messages-Waiting and Voice-Message lines that were meant.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sendSipNotify, SipAuthError, type SipTarget } from '../../src/mwi/sip-notify.js';
import { startSipPeer, type ReceivedRequest, type SipPeer } from '../support/sip-peer.js';

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
