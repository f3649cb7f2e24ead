/**
 * The notify line protocol, how `vmbridge notify` finds the socket and reports, and that its fast
 * path imports nothing heavy.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import fc from 'fast-check';
import { describeOutcome, notifySocketPath, runNotify, type NotifyIo } from '../../src/cli/notify-cmd.js';
import { MAIN_HELP, NOTIFY_HELP, VERSION } from '../../src/cli/notify-help.js';
import { DEFAULT_NOTIFY_SOCKET, formatAnswer, formatRequest, parseAnswer, parseRequest } from '../../src/notify/protocol.js';
import { isSafeName } from '../../src/spool/names.js';

const ROOT = resolve(import.meta.dirname, '../..');
const ref = { context: 'default', mailbox: '1000' };

describe('notify protocol: requests', () => {
  it('a formatted request parses back to the same mailbox', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.+-]{1,80}$/).filter(isSafeName);
    fc.assert(fc.property(name, name, (context, mailbox) => {
      const line = formatRequest({ context, mailbox });
      assert.ok(line.endsWith('\n'));
      assert.equal(line.indexOf('\n'), line.length - 1, 'one line');
      assert.deepEqual(parseRequest(line.slice(0, -1)), { ok: true, ref: { context, mailbox } });
    }));
  });
  it('takes a CRLF line', () => {
    assert.deepEqual(parseRequest('notify default 1000\r'), { ok: true, ref });
  });
  it('refuses unsafe names, exactly as names.ts does', () => {
    for (const [line, reason] of [
      ['notify .. 1000', 'unsafe context name'],
      ['notify default ..', 'unsafe mailbox name'],
      ['notify default a/b', 'unsafe mailbox name'],
      ['notify default .', 'unsafe mailbox name'],
      [`notify default ${'9'.repeat(81)}`, 'unsafe mailbox name'],
      ['notify def\u00e4ult 1000', 'unsafe context name'],
      ['notify default 10\u00000', 'unsafe mailbox name'],
    ] as const) {
      assert.deepEqual(parseRequest(line), { ok: false, reason }, line);
    }
  });
  it('carries a named server as a fourth word, and refuses one that is not a server name', () => {
    const onB = { server: 'pbx-b', context: 'default', mailbox: '1000' };
    assert.equal(formatRequest(onB), 'notify default 1000 pbx-b\n');
    assert.deepEqual(parseRequest('notify default 1000 pbx-b'), { ok: true, ref: onB });
    assert.equal(formatRequest(ref), 'notify default 1000\n');
    assert.deepEqual(parseRequest('notify default 1000 a.b'), { ok: false, reason: 'not a server name' });
    assert.deepEqual(parseRequest('notify default 1000 ../x'), { ok: false, reason: 'not a server name' });
  });
  it('refuses anything but "notify <context> <mailbox> [<server>]"', () => {
    for (const line of ['', 'notify', 'notify default', 'notify default 1000 pbx-b extra', 'NOTIFY default 1000', 'notify  default 1000', 'notify default 1000 ', 'queue default 1000', 'notify\tdefault\t1000']) {
      const parsed = parseRequest(line);
      assert.equal(parsed.ok, false, JSON.stringify(line));
    }
  });
});

describe('notify protocol: answers', () => {
  it('round-trips every answer', () => {
    for (const a of [{ kind: 'queued' }, { kind: 'unknown' }, { kind: 'error', reason: 'unsafe mailbox name' }] as const) {
      const line = formatAnswer(a);
      assert.match(line, /^[^\n]+\n$/);
      assert.deepEqual(parseAnswer(line.slice(0, -1)), a);
    }
  });
  it('keeps an error reason on one line', () => {
    assert.equal(formatAnswer({ kind: 'error', reason: 'two\nlines\r\n' }), 'error two lines \n');
  });
  it('does not take what another program might say', () => {
    for (const line of ['', 'ok', 'ok queued extra', 'OK queued', 'HTTP/1.1 400 Bad Request', '+PONG']) assert.equal(parseAnswer(line), undefined, line);
  });
});

describe('vmbridge notify: the socket path and what it says', () => {
  it('takes --socket, then VMBRIDGE_NOTIFY_SOCKET, then the default', () => {
    assert.equal(notifySocketPath('/a.sock', { VMBRIDGE_NOTIFY_SOCKET: '/b.sock' }), '/a.sock');
    assert.equal(notifySocketPath(undefined, { VMBRIDGE_NOTIFY_SOCKET: '/b.sock' }), '/b.sock');
    assert.equal(notifySocketPath(undefined, { VMBRIDGE_NOTIFY_SOCKET: '' }), DEFAULT_NOTIFY_SOCKET);
    assert.equal(notifySocketPath(undefined, {}), DEFAULT_NOTIFY_SOCKET);
  });
  it('exits 0 whenever the watcher and the sweep still find the change, 1 when the service refused', () => {
    const p = '/x/notify.sock';
    assert.deepEqual(describeOutcome({ kind: 'queued' }, p, ref), { code: 0 });
    for (const o of [{ kind: 'unreachable', code: 'ENOENT' }, { kind: 'unreachable', code: 'ECONNREFUSED' }, { kind: 'unreachable', code: 'EACCES' }, { kind: 'timeout', ms: 200 }] as const) {
      const told = describeOutcome(o, p, ref);
      assert.equal(told.code, 0, o.kind);
      assert.match(told.line ?? '', /\/x\/notify\.sock/);
      assert.match(told.line ?? '', /watcher and the sweep will pick up 1000@default/);
    }
    assert.match(describeOutcome({ kind: 'unreachable', code: 'EACCES' }, p, ref).line ?? '', /group/);
    assert.match(describeOutcome({ kind: 'unknown' }, p, ref).line ?? '', /no mailbox 1000@default/);
    assert.equal(describeOutcome({ kind: 'refused', reason: 'unsafe mailbox name' }, p, ref).code, 1);
  });
});

function io(env: NodeJS.ProcessEnv = {}): NotifyIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { env, out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) };
}

describe('vmbridge notify: arguments', () => {
  it('prints its help', async () => {
    const c = io();
    assert.equal(await runNotify(['--help'], c), 0);
    assert.equal(c.out.join(''), `${NOTIFY_HELP}\n`);
  });
  it('exits 2 on a wrong shape or option, 1 on an unsafe name, before connecting anywhere', async () => {
    // A socket path that would fail differently if it were tried.
    const env = { VMBRIDGE_NOTIFY_SOCKET: '/nonexistent-dir/notify.sock' };
    const shape = io(env);
    assert.equal(await runNotify(['default'], shape), 2);
    assert.match(shape.err.join(''), /given without a mailbox/);
    const option = io(env);
    assert.equal(await runNotify(['--nope', 'default', '1000'], option), 2);
    assert.match(option.err.join(''), /Unknown option '--nope'/);
    const unsafe = io(env);
    assert.equal(await runNotify(['default', '../etc', '1', '0', '0'], unsafe), 1);
    assert.match(unsafe.err.join(''), /not a safe spool name/);
    assert.doesNotMatch(unsafe.err.join(''), /not reached/);
  });
  it('names the mailbox with its server (--server), and refuses a --server that is not a server name', async () => {
    const env = { VMBRIDGE_NOTIFY_SOCKET: '/nonexistent-dir/notify.sock' };
    const bad = io(env);
    assert.equal(await runNotify(['--server', 'a/b', 'default', '1000'], bad), 2);
    assert.match(bad.err.join(''), /--server "a\/b" is not a server name/);
    const named = io(env);
    assert.equal(await runNotify(['--server', 'pbx-b', 'default', '1000'], named), 0);
    assert.match(named.err.join(''), /pick up pbx-b\/1000@default/);
    const main = io(env);
    assert.equal(await runNotify(['--server', 'main', 'default', '1000'], main), 0);
    assert.match(main.err.join(''), /pick up 1000@default/);
  });
  it('exits 1 naming the file when the --config file does not load', async () => {
    const c = io({});
    assert.equal(await runNotify(['--config', '/nonexistent-dir/vmbridge.yaml', 'default', '1000'], c), 1);
    assert.match(c.err.join(''), /^vmbridge: settings file \/nonexistent-dir\/vmbridge\.yaml does not exist/);
  });
  it('with no service, says so on standard error and exits 0', async () => {
    const c = io({ VMBRIDGE_NOTIFY_SOCKET: '/nonexistent-dir/notify.sock' });
    assert.equal(await runNotify(['', '1000@default', '1', '0', '0'], c), 0);
    assert.match(c.err.join(''), /^vmbridge notify: vmbridge not reached at \/nonexistent-dir\/notify\.sock \(no such socket/);
    assert.equal(c.err.join('').split('\n').filter(Boolean).length, 1, 'one line');
  });
});

describe('vmbridge --version and --help', () => {
  it('the version is package.json\'s', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(VERSION, pkg.version);
    assert.match(MAIN_HELP, new RegExp(`^vmbridge ${VERSION.replace(/\./g, '\\.')} `));
  });
});

/** Static imports (`import ... from`, not `import type`), and dynamic `import('...')`. */
function importsOf(source: string): { static: string[]; dynamic: string[] } {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const stat = [...code.matchAll(/^\s*import\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  const dynamic = [...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return { static: stat, dynamic };
}

describe('the fast path of bin.ts loads only node: builtins and small modules', () => {
  it('notify, --version and --help reach no package and not main.ts', async () => {
    // bin.ts answers --version and --help from its static imports; notify adds notify-cmd.ts.
    // notify-redis.ts (settings, Redis) is reached only with --config, by a dynamic import.
    const seen = new Set<string>();
    const packages: string[] = [];
    const visit = async (file: string, from: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const found = importsOf(await readFile(file, 'utf8'));
      const follow = file.endsWith('notify-cmd.ts') ? found.static : [...found.static, ...found.dynamic];
      for (const spec of follow) {
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) {
          packages.push(`${spec} (from ${from} -> ${file})`);
          continue;
        }
        await visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')), file);
      }
    };
    const bin = join(ROOT, 'src/cli/bin.ts');
    const binImports = importsOf(await readFile(bin, 'utf8'));
    assert.deepEqual(binImports.dynamic.sort(), ['./main.js', './notify-cmd.js']);
    for (const spec of binImports.static) await visit(resolve(dirname(bin), spec.replace(/\.js$/, '.ts')), bin);
    await visit(join(ROOT, 'src/cli/notify-cmd.ts'), bin);
    assert.deepEqual(packages, [], 'packages on the fast path');
    const relative = [...seen].map((f) => f.slice(ROOT.length + 1)).sort();
    assert.ok(!relative.includes('src/cli/main.ts'), 'main.ts on the fast path');
    assert.ok(!relative.includes('src/config/load-settings.ts'), 'the settings loader on the fast path');
    assert.ok(relative.includes('src/notify/client.ts') && relative.includes('src/spool/names.ts'), relative.join(', '));
  });
});
