/**
 * The RFC 3842 body and the strict value checks that guard every SIP message vmbridge writes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkHost,
  MessageSummaryError,
  messageSummaryBody,
  parseSipUri,
  UnsafeSipValueError,
  type MessageSummary,
} from '../../src/mwi/message-summary.js';

describe('messageSummaryBody', () => {
  it('writes the lines Asterisk writes, CRLF-terminated', () => {
    assert.equal(messageSummaryBody({ newCount: 2, oldCount: 5 }), 'Messages-Waiting: yes\r\nVoice-Message: 2/5 (0/0)\r\n');
  });

  it('says no when nothing is new, even with old messages', () => {
    assert.equal(messageSummaryBody({ newCount: 0, oldCount: 7 }), 'Messages-Waiting: no\r\nVoice-Message: 0/7 (0/0)\r\n');
    assert.equal(messageSummaryBody({ newCount: 0, oldCount: 0 }), 'Messages-Waiting: no\r\nVoice-Message: 0/0 (0/0)\r\n');
  });

  it('adds Message-Account between the status line and the summary (RFC 3842 §5.2 order)', () => {
    assert.equal(
      messageSummaryBody({ newCount: 4, oldCount: 8, urgentNew: 1, urgentOld: 2, account: 'sip:alice@vmail.example.com' }),
      'Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 4/8 (1/2)\r\n',
    );
  });

  it('accepts sips:, IP literals and ports in the account URI', () => {
    for (const account of ['sips:1000@pbx.example', 'sip:1000@192.0.2.10:5060', 'sip:1000@[2001:db8::1]:5070', 'sip:vm.box+1_a-b@pbx.example.']) {
      assert.match(messageSummaryBody({ newCount: 1, oldCount: 0, account }), new RegExp(`^Message-Account: ${account.replace(/[.+[\]]/g, '\\$&')}\r$`, 'm'));
    }
  });

  it('refuses counts that are unknown, negative, fractional or not numbers', () => {
    const bad: unknown[] = [undefined, null, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', 2n, 2 ** 53];
    for (const value of bad) {
      for (const field of ['newCount', 'oldCount', 'urgentNew', 'urgentOld'] as const) {
        const summary = { newCount: 3, oldCount: 3, urgentNew: 0, urgentOld: 0, [field]: value } as unknown as MessageSummary;
        if (value === undefined && (field === 'urgentNew' || field === 'urgentOld')) continue; // defaults to 0
        assert.throws(() => messageSummaryBody(summary), (err: unknown) => err instanceof MessageSummaryError && err.field === field && err.code === 'MWI_SUMMARY', `${field}=${String(value)}`);
      }
    }
  });

  it('refuses urgent counts larger than the totals they are part of', () => {
    assert.throws(() => messageSummaryBody({ newCount: 1, oldCount: 0, urgentNew: 2 }), MessageSummaryError);
    assert.throws(() => messageSummaryBody({ newCount: 0, oldCount: 1, urgentOld: 2 }), MessageSummaryError);
  });

  it('refuses an account URI that could inject lines or is not a plain sip:user@host', () => {
    const bad = [
      'sip:1000@pbx.example\r\nMessages-Waiting: no',
      'sip:1000@pbx.example\n',
      'sip:10\u000000@pbx.example',
      'sip:1000@pbx.example;transport=tcp',
      'sip:1000@pbx.example?Subject=x',
      '<sip:1000@pbx.example>',
      'tel:+15551234',
      'SIP:1000@pbx.example',
      'sip:@pbx.example',
      'sip:pbx.example',
      'sip:a b@pbx.example',
      'sip:a"b@pbx.example',
      'sip:1000@bad_host',
      'sip:1000@-bad.example',
      'sip:1000@999.1.1.1',
      'sip:1000@[not-v6]',
      'sip:1000@pbx.example:0',
      'sip:1000@pbx.example:70000',
      '',
    ];
    for (const account of bad) {
      assert.throws(() => messageSummaryBody({ newCount: 1, oldCount: 0, account }), UnsafeSipValueError, JSON.stringify(account));
    }
  });

  it('quotes the offending value safely in the error message', () => {
    try {
      messageSummaryBody({ newCount: 1, oldCount: 0, account: 'sip:1@h\r\nX: y' });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof UnsafeSipValueError);
      assert.equal(err.code, 'SIP_UNSAFE_VALUE');
      assert.doesNotMatch(err.message, /[\r\n]/);
      assert.match(err.message, /\\r\\n/);
    }
  });

  it('round-trips any valid counts (property)', () => {
    const summary = fc
      .record({ newCount: fc.nat(100_000), oldCount: fc.nat(100_000) })
      .chain(({ newCount, oldCount }) =>
        fc.record({
          newCount: fc.constant(newCount),
          oldCount: fc.constant(oldCount),
          urgentNew: fc.nat(newCount),
          urgentOld: fc.nat(oldCount),
        }),
      );
    fc.assert(
      fc.property(summary, (s) => {
        const body = messageSummaryBody(s);
        const m = /^Messages-Waiting: (yes|no)\r\nVoice-Message: ([0-9]+)\/([0-9]+) \(([0-9]+)\/([0-9]+)\)\r\n$/.exec(body);
        assert.ok(m, body);
        assert.equal(m[1], s.newCount > 0 ? 'yes' : 'no');
        assert.deepEqual([m[2], m[3], m[4], m[5]].map(Number), [s.newCount, s.oldCount, s.urgentNew, s.urgentOld]);
      }),
    );
  });
});

describe('parseSipUri and checkHost', () => {
  it('splits a URI into its parts', () => {
    assert.deepEqual(parseSipUri('u', 'sip:1000@pbx.example:5070'), {
      scheme: 'sip', user: '1000', host: 'pbx.example', hostKind: 'hostname', port: 5070, text: 'sip:1000@pbx.example:5070',
    });
    const v6 = parseSipUri('u', 'sips:vm@[::1]');
    assert.equal(v6.host, '::1');
    assert.equal(v6.hostKind, 'ipv6');
    assert.equal(v6.port, undefined);
  });

  it('knows host names from IP literals', () => {
    assert.equal(checkHost('h', '127.0.0.1').kind, 'ipv4');
    assert.equal(checkHost('h', '::1').kind, 'ipv6');
    assert.equal(checkHost('h', '[::1]').host, '::1');
    assert.equal(checkHost('h', 'localhost').kind, 'hostname');
    for (const bad of ['', 'a..b', 'host name', 'h\r\nX: 1', '[127.0.0.1]', '1.2.3', 'x'.repeat(64) + '.example', 42]) {
      assert.throws(() => checkHost('h', bad), UnsafeSipValueError, String(bad));
    }
  });
});
