import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UnsafeNameError } from '../../src/errors.js';
import { NotifyArgsError, parseNotifyArgs } from '../../src/cli/notify-args.js';

/**
 * Argument lists an externnotify script logged under a real Asterisk 22.10.1 (file storage,
 * pollmailboxes=yes), one line per run: `<time> argc=N [arg1] [arg2] ...`. The first shape comes
 * after a message is left, moved or removed; the `[] [mailbox@context]` shape after a poll or a
 * VoicemailRefresh.
 */
const CAPTURED = `
2026-11-22T11:32:16.846Z argc=5 [default] [1001] [1] [0] [0]
2026-11-22T11:32:55.577Z argc=5 [default] [1000] [2] [0] [0]
2026-11-22T11:33:18.401Z argc=5 [] [1001@default] [0] [1] [0]
2026-11-22T11:33:31.302Z argc=5 [] [1000@default] [1] [1] [0]
2026-11-22T11:33:41.181Z argc=5 [] [1002@default] [1] [0] [0]
2026-11-22T11:33:49.831Z argc=5 [default] [1000] [0] [2] [0]
2026-11-22T11:33:55.452Z argc=5 [default] [1002] [0] [0] [0]
2026-11-22T11:34:20.519Z argc=5 [default] [1000] [0] [1] [1]
2026-11-22T11:34:21.346Z argc=5 [] [1000@default] [0] [1] [1]
`;

function capturedArgs(line: string): string[] {
  const argc = Number(/argc=(\d+)/.exec(line)?.[1]);
  const args = [...line.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] ?? '');
  assert.equal(args.length, argc, line);
  return args;
}

describe('parseNotifyArgs: the argument lists Asterisk really passes', () => {
  const lines = CAPTURED.trim().split('\n');
  for (const line of lines) {
    const args = capturedArgs(line);
    it(`parses ${JSON.stringify(args)}`, () => {
      const parsed = parseNotifyArgs(args);
      const mailbox = args[0] === '' ? args[1]!.split('@')[0] : args[1];
      assert.deepEqual(parsed.ref, { context: 'default', mailbox });
      assert.deepEqual(parsed.counts, { new: Number(args[2]), old: Number(args[3]), urgent: Number(args[4]) });
    });
  }
  it('covers both shapes', () => {
    const shapes = new Set(lines.map((l) => (capturedArgs(l)[0] === '' ? 'qualified' : 'split')));
    assert.deepEqual([...shapes].sort(), ['qualified', 'split']);
  });
});

describe('parseNotifyArgs: other accepted forms', () => {
  it('takes <mailbox>@<context> alone', () => {
    assert.deepEqual(parseNotifyArgs(['1000@default']), { ref: { context: 'default', mailbox: '1000' } });
  });
  it('takes <mailbox>@<context> with counts', () => {
    assert.deepEqual(parseNotifyArgs(['1000@from-internal', '3', '1', '0']), {
      ref: { context: 'from-internal', mailbox: '1000' },
      counts: { new: 3, old: 1, urgent: 0 },
    });
  });
  it('takes <context> <mailbox> without counts', () => {
    assert.deepEqual(parseNotifyArgs(['default', '1000']), { ref: { context: 'default', mailbox: '1000' } });
  });
  it('takes a literal "" when no shell removed the quotes', () => {
    assert.deepEqual(parseNotifyArgs(['""', '1000@default', '1', '0', '0']).ref, { context: 'default', mailbox: '1000' });
  });
  it('takes <context> <mailbox>@<same context>', () => {
    assert.deepEqual(parseNotifyArgs(['default', '1000@default']).ref, { context: 'default', mailbox: '1000' });
  });
  it('ignores counts that are not whole numbers >= 0, or incomplete', () => {
    for (const counts of [['-1', '0', '0'], ['1.5', '0', '0'], ['x', '0', '0'], ['1', '0'], ['1'], ['', '0', '0'], ['1e3', '0', '0']]) {
      const parsed = parseNotifyArgs(['default', '1000', ...counts]);
      assert.deepEqual(parsed, { ref: { context: 'default', mailbox: '1000' } }, JSON.stringify(counts));
    }
  });
});

describe('parseNotifyArgs: rejected input', () => {
  const usage = (err: unknown): boolean =>
    err instanceof NotifyArgsError &&
    err.code === 'USAGE' &&
    err.message.includes('<context> <mailbox>') &&
    err.message.includes('"" <mailbox>@<context>');
  const cases: Array<[string, string[]]> = [
    ['no arguments', []],
    ['a context without a mailbox', ['default']],
    ['an empty context with a bare mailbox', ['', '1000', '1', '0', '0']],
    ['an empty context alone', ['']],
    ['mailbox@ with no context', ['1000@']],
    ['@context with no mailbox', ['', '@default']],
    ['a context that contradicts mailbox@context', ['default', '1000@other']],
    ['too many arguments', ['default', '1000', '1', '0', '0', '7']],
  ];
  for (const [why, args] of cases) {
    it(`rejects ${why} with the accepted shapes`, () => assert.throws(() => parseNotifyArgs(args), usage));
  }

  const unsafe: Array<[string, string[]]> = [
    ['.. as context', ['..', '1000']],
    ['.. as mailbox', ['default', '..']],
    ['a/b as mailbox', ['default', 'a/b']],
    ['a/b as context', ['a/b', '1000']],
    ['a/b in mailbox@context', ['', 'a/b@default']],
    ['.. in mailbox@context', ['', '1000@..']],
    ['../x as context in mailbox@context', ['1000@../etc']],
    ['a second @', ['', '1000@default@x']],
    ['a space', ['default', '10 00']],
  ];
  for (const [why, args] of unsafe) {
    it(`rejects ${why} as an unsafe name`, () => assert.throws(() => parseNotifyArgs(args), UnsafeNameError));
  }
});
