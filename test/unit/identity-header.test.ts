import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  IDENTITY_HEADER,
  identityMessageId,
  identitySearchValue,
  parseIdentityMessageId,
} from '../../src/imap/identity-header.js';

const DOMAIN = 'vmbridge.invalid';
const ref = { context: 'default', mailbox: '1000' };
// RFC 5322 msg-id with a dot-atom left side.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM_ID = new RegExp(`^<${ATEXT}(?:\\.${ATEXT})*@${DOMAIN.replace('.', '\\.')}>$`);

describe('identityMessageId', () => {
  it('writes the plain form for an ordinary msg_id', () => {
    assert.equal(identityMessageId(ref, '1795347150-00000001', DOMAIN), '<vm.1795347150-00000001.1000.default@vmbridge.invalid>');
  });

  it('escapes everything outside letters, digits and hyphen as _XX per UTF-8 byte', () => {
    assert.equal(
      identityMessageId({ context: 'from.int_ernal', mailbox: 'a+b' }, 'x y', DOMAIN),
      '<vm.x_20y.a_2Bb.from_2Eint_5Fernal@vmbridge.invalid>',
    );
    assert.equal(identityMessageId(ref, 'é€', DOMAIN), '<vm._C3_A9_E2_82_AC.1000.default@vmbridge.invalid>');
  });

  it('names the header and searches for the whole bracketed value', () => {
    assert.equal(IDENTITY_HEADER, 'Message-ID');
    assert.equal(identitySearchValue(ref, '1-00000001', DOMAIN), identityMessageId(ref, '1-00000001', DOMAIN));
    // SEARCH HEADER matches substrings: the brackets keep mailbox 1000 from finding 11000.
    const a = identitySearchValue({ context: 'default', mailbox: '1000' }, '5-0000000a', DOMAIN);
    const b = identityMessageId({ context: 'default', mailbox: '11000' }, '5-0000000a', DOMAIN);
    const c = identityMessageId({ context: 'default', mailbox: '1000' }, '15-0000000a', DOMAIN);
    assert.ok(!b.toLowerCase().includes(a.toLowerCase()));
    assert.ok(!c.toLowerCase().includes(a.toLowerCase()));
  });

  it('refuses parts that cannot round-trip', () => {
    assert.throws(() => identityMessageId(ref, '', DOMAIN), RangeError);
    assert.throws(() => identityMessageId({ context: '', mailbox: '1000' }, '1', DOMAIN), RangeError);
    assert.throws(() => identityMessageId(ref, 'a\uD800b', DOMAIN), RangeError);
    assert.throws(() => identityMessageId(ref, '1', 'bad domain'), RangeError);
    assert.throws(() => identityMessageId(ref, '1', 'x>y'), RangeError);
  });
});

describe('parseIdentityMessageId', () => {
  it('reads back what identityMessageId wrote', () => {
    const value = identityMessageId({ context: 'from.int_ernal', mailbox: 'a+b' }, 'é x', DOMAIN);
    assert.deepEqual(parseIdentityMessageId(value, DOMAIN), { ref: { context: 'from.int_ernal', mailbox: 'a+b' }, id: 'é x' });
  });

  it('tolerates surrounding whitespace and a differently cased domain', () => {
    const value = identityMessageId(ref, '1-00000001', DOMAIN);
    assert.deepEqual(parseIdentityMessageId(` \t${value}\r\n`, DOMAIN), { ref, id: '1-00000001' });
    assert.deepEqual(parseIdentityMessageId(value.replace(DOMAIN, 'VMBridge.Invalid'), DOMAIN), { ref, id: '1-00000001' });
  });

  it('returns undefined for anything it did not write', () => {
    const notOurs = [
      '',
      '<Asterisk-1-55645145-1000-1070@vm>',
      '<vm.1-00000001.1000.default@other.invalid>',
      'vm.1-00000001.1000.default@vmbridge.invalid', // brackets missing
      '<vm.1-00000001.1000.default@vmbridge.invalid', // one bracket missing
      '<xx.1-00000001.1000.default@vmbridge.invalid>', // prefix
      '<vm.1-00000001.1000@vmbridge.invalid>', // part missing
      '<vm.1-00000001.1000.default.pbx-b.extra@vmbridge.invalid>', // part too many (a fifth names the server)
      '<vm..1000.default@vmbridge.invalid>', // empty part
      '<vm.a_2eb.1000.default@vmbridge.invalid>', // lowercase hex
      '<vm._41.1000.default@vmbridge.invalid>', // 'A' escaped: not canonical
      '<vm._FF.1000.default@vmbridge.invalid>', // not UTF-8
      '<vm._C3.1000.default@vmbridge.invalid>', // truncated UTF-8
      '<vm.a_2.1000.default@vmbridge.invalid>', // short escape
      '<vm.a_b.1000.default@vmbridge.invalid>',
      '<vm.a b.1000.default@vmbridge.invalid>',
      '<vm.1.1000.default@vmbridge.invalid> <vm.2.1000.default@vmbridge.invalid>',
    ];
    for (const value of notOurs) assert.equal(parseIdentityMessageId(value, DOMAIN), undefined, value);
  });
});

describe('identity properties', () => {
  const part = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 });
  const partAscii = fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 24 });
  const anyPart = fc.oneof(part, partAscii);

  it('round-trips any well-formed strings and always yields a dot-atom msg-id', () => {
    fc.assert(
      fc.property(anyPart, anyPart, anyPart, (id, mailbox, context) => {
        const value = identityMessageId({ context, mailbox }, id, DOMAIN);
        assert.match(value, DOT_ATOM_ID);
        assert.deepEqual(parseIdentityMessageId(value, DOMAIN), { ref: { context, mailbox }, id });
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective: different identities never give the same or a contained search value', () => {
    fc.assert(
      fc.property(anyPart, anyPart, anyPart, anyPart, (id1, mb1, id2, mb2) => {
        fc.pre(id1 !== id2 || mb1 !== mb2);
        const a = identitySearchValue({ context: 'default', mailbox: mb1 }, id1, DOMAIN);
        const b = identitySearchValue({ context: 'default', mailbox: mb2 }, id2, DOMAIN);
        assert.ok(!a.includes(b) && !b.includes(a));
      }),
      { numRuns: 1000 },
    );
  });

  it('is canonical: whatever parses, rebuilds to the same text', () => {
    const alphabet = fc.constantFrom('a', 'Z', '0', '-', '_', '2', 'E', 'F', 'C', '3', 'A', '9', '.', 'x');
    const local = fc.string({ unit: alphabet, maxLength: 30 });
    fc.assert(
      fc.property(local, (l) => {
        const value = `<vm.${l}@${DOMAIN}>`;
        const parsed = parseIdentityMessageId(value, DOMAIN);
        if (parsed) assert.equal(identityMessageId(parsed.ref, parsed.id, DOMAIN), value);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on arbitrary header text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (value) => {
        parseIdentityMessageId(value, DOMAIN);
        parseIdentityMessageId(`<${value}@${DOMAIN}>`, DOMAIN);
      }),
    );
  });
});
