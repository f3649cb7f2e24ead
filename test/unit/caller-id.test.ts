import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CALLER_NAME_MAX, CALLER_NUMBER_MAX, parseCallerId, sanitizeText } from '../../src/imap/caller-id.js';

describe('parseCallerId', () => {
  const cases: Array<[string | undefined, string, string]> = [
    ['"Test Caller" <5551234>', 'Test Caller', '5551234'],
    ['Test Caller <5551234>', 'Test Caller', '5551234'],
    ['<5551234>', '', '5551234'],
    ['5551234', '', '5551234'],
    ['+49 (30) 123-456', '', '+49 (30) 123-456'],
    ['*97', '', '*97'],
    ['Test Caller', 'Test Caller', ''],
    ['"Test Caller"', 'Test Caller', ''],
    ['Unknown', '', ''],
    ['unknown', '', ''],
    ['"Unknown" <unknown>', '', ''],
    ['', '', ''],
    ['   ', '', ''],
    [undefined, '', ''],
    ['"5551234" <5551234>', '', '5551234'],
    ['"" <5551234>', '', '5551234'],
    ['"Al \\"Bo\\" C" <12>', 'Al "Bo" C', '12'],
    ['"a<b" <12>', 'a<b', '12'],
    ['Anonymous <anonymous>', 'Anonymous', 'anonymous'],
    ['"José Müller" <+3312>', 'José Müller', '+3312'],
    ['"  Lots   of\t space " < 12 34 >', 'Lots of space', '12 34'],
  ];
  for (const [raw, name, number] of cases) {
    it(`splits ${JSON.stringify(raw)}`, () => {
      assert.deepEqual(parseCallerId(raw), { name, number });
    });
  }

  it('turns line breaks into spaces and drops other control characters', () => {
    assert.deepEqual(parseCallerId('"Evil\r\nBcc: x@example.com" <555\r\n1234>'), { name: 'Evil Bcc: x@example.com', number: '555 1234' });
    assert.deepEqual(parseCallerId('"A\u0000B\u0007C\u007fD\u0085E\u009bF" <1\u00002>'), { name: 'ABCD EF', number: '12' });
    assert.deepEqual(parseCallerId('"Line\u2028Sep\u2029Para" <1>'), { name: 'Line Sep Para', number: '1' });
    // A line break between name and number must not hide the number.
    assert.deepEqual(parseCallerId('"Name"\r\n<5551234>'), { name: 'Name', number: '5551234' });
  });

  it('drops bidi overrides that could make a number display reversed', () => {
    assert.deepEqual(parseCallerId('"\u202Eevil\u202C" <1\u2066234\u2069>'), { name: 'evil', number: '1234' });
  });

  it('bounds lengths without splitting a character', () => {
    const long = parseCallerId(`"${'x'.repeat(200)}" <${'9'.repeat(100)}>`);
    assert.equal(long.name.length, CALLER_NAME_MAX);
    assert.equal(long.number.length, CALLER_NUMBER_MAX);
    const emoji = parseCallerId(`"${'😀'.repeat(100)}" <1>`).name;
    assert.equal([...emoji].length, CALLER_NAME_MAX);
    assert.doesNotMatch(emoji, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    // 79 letters + "e" + combining acute: the accent stays with its letter or both go.
    const combining = parseCallerId(`"${'a'.repeat(79)}e\u0301" <1>`).name;
    assert.equal(combining, 'a'.repeat(79));
  });

  it('replaces lone surrogates', () => {
    assert.deepEqual(parseCallerId('"a\uD800b" <1>'), { name: 'a\uFFFDb', number: '1' });
  });

  it('never returns unsafe text, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 })), (raw) => {
        const { name, number } = parseCallerId(raw);
        for (const value of [name, number]) {
          assert.ok(!/[\p{Cc}\u2028\u2029]/u.test(value), JSON.stringify(value));
          assert.ok(!/\s{2}/.test(value) && value === value.trim());
        }
        assert.ok([...name].length <= CALLER_NAME_MAX);
        assert.ok([...number].length <= CALLER_NUMBER_MAX);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sanitizeText', () => {
  it('collapses, trims and bounds', () => {
    assert.equal(sanitizeText(' a \t\r\n b\u0000c ', 10), 'a bc');
    assert.equal(sanitizeText(undefined), '');
    assert.equal(sanitizeText('abc def', 5), 'abc d');
    assert.equal(sanitizeText('abcd efg', 5), 'abcd');
  });
});
