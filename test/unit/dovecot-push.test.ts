import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearerMatches, handleDovecotPush, parsePushNotice, PushRequestError, type PushNotice } from '../../src/http/dovecot-push.js';

describe('parsePushNotice', () => {
  it('reads the body the Dovecot script sends', () => {
    const n = parsePushNotice(Buffer.from('{"user":"alice","events":[{"event":"FlagsSet","mailbox":"INBOX","uid":3},{"event":"MailboxCreate","mailbox":"Work"}],"truncated":false}'));
    assert.deepEqual(n, { user: 'alice', events: [{ event: 'FlagsSet', mailbox: 'INBOX', uid: 3 }, { event: 'MailboxCreate', mailbox: 'Work' }], truncated: false });
  });

  for (const [what, body, says] of [
    ['not JSON', '{"user":', 'not JSON'],
    ['no user', '{"events":[]}', 'user'],
    ['an empty user', '{"user":"","events":[]}', 'user'],
    ['events not a list', '{"user":"a","events":{}}', 'events'],
    ['a negative uid', '{"user":"a","events":[{"event":"FlagsSet","uid":-1}]}', 'events.0.uid'],
    ['an event without a name', '{"user":"a","events":[{"mailbox":"INBOX"}]}', 'events.0.event'],
  ] as const) {
    it(`refuses ${what} with a 400 naming the field`, () => {
      assert.throws(() => parsePushNotice(Buffer.from(body)), (err: unknown) => err instanceof PushRequestError && err.status === 400 && err.message.includes(says));
    });
  }
});

describe('bearerMatches', () => {
  it('accepts exactly the token, in the Bearer scheme (any case)', () => {
    assert.equal(bearerMatches('Bearer s3cret', 's3cret'), true);
    assert.equal(bearerMatches('bearer s3cret', 's3cret'), true);
    assert.equal(bearerMatches('Bearer s3cre', 's3cret'), false);
    assert.equal(bearerMatches('Bearer s3cretX', 's3cret'), false);
    assert.equal(bearerMatches('Basic s3cret', 's3cret'), false);
    assert.equal(bearerMatches(undefined, 's3cret'), false);
    assert.equal(bearerMatches('Bearer ', 's3cret'), false);
  });
});

describe('POST /dovecot-push', () => {
  let server: Server;
  let url: string;
  const notices: PushNotice[] = [];
  const refused: Array<{ status: number; reason: string }> = [];
  before(async () => {
    server = createServer((req, res) => handleDovecotPush(req, res, { token: 'tok-1', onNotice: (n) => notices.push(n), onRefused: (status, reason) => refused.push({ status, reason }) }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dovecot-push`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const post = (body: string | Buffer, headers: Record<string, string> = { authorization: 'Bearer tok-1' }, method = 'POST') =>
    fetch(url, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'GET' ? {} : { body }) });

  it('answers 204 to a good notice and passes it on', async () => {
    notices.length = 0;
    const res = await post('{"user":"alice","events":[{"event":"FlagsSet","mailbox":"INBOX","uid":1}]}');
    assert.equal(res.status, 204);
    assert.deepEqual(notices.map((n) => n.user), ['alice']);
  });

  it('refuses a wrong or missing token with 401 and passes nothing on', async () => {
    notices.length = 0;
    refused.length = 0;
    assert.equal((await post('{"user":"alice","events":[]}', { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await post('{"user":"alice","events":[]}', {})).status, 401);
    assert.equal(notices.length, 0);
    assert.deepEqual(refused.map((r) => r.status), [401, 401]);
    assert.ok(refused.every((r) => !r.reason.includes('nope')), 'the offered token is not repeated');
  });

  it('refuses another method (405), a bad body (400) and one over 64 KiB (413)', async () => {
    notices.length = 0;
    assert.equal((await post('', {}, 'GET')).status, 405);
    const bad = await post('{"user":1,"events":[]}');
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /user/);
    assert.equal((await post(Buffer.alloc(70 * 1024, 0x20))).status, 413);
    assert.equal(notices.length, 0);
  });
});
