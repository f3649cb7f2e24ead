import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/errors.js';
import { readAsteriskConf } from '../../src/config/asterisk-conf.js';
import { boxOption, boxTimezone, readVoicemailConf, scanConfigText, type VoicemailConf } from '../../src/config/voicemail-conf.js';

const CONFIG = fileURLToPath(new URL('../fixtures/asterisk/config/', import.meta.url));

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-conf-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes the files into a fresh directory and returns its path. */
async function files(map: Record<string, string | Buffer>): Promise<string> {
  const dir = join(root, `conf-${++counter}`);
  for (const [name, content] of Object.entries(map)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

async function conf(text: string, extra: Record<string, string | Buffer> = {}): Promise<{ conf: VoicemailConf; path: string; dir: string }> {
  const dir = await files({ 'voicemail.conf': text, ...extra });
  const path = join(dir, 'voicemail.conf');
  return { conf: await readVoicemailConf(path), path, dir };
}

const keys = (c: VoicemailConf): string[] => c.boxes.map((b) => `${b.mailbox}@${b.context}`);

describe('readVoicemailConf: the fixture from the real Asterisk', () => {
  it('reads [general], the three mailboxes of [default], and imapuser=bob on 1001', async () => {
    const path = join(CONFIG, 'voicemail.conf');
    const c = await readVoicemailConf(path);
    assert.deepEqual(c.problems, []);
    assert.equal(c.general['format'], 'wav49|gsm|wav');
    assert.equal(c.general['pollmailboxes'], 'yes');
    assert.equal(c.general['pollfreq'], '5');
    assert.equal(c.general['mailcmd'], '/usr/sbin/sendmail -t');
    assert.equal(c.general['externnotify'], '/usr/local/bin/vm-externnotify.sh');
    assert.deepEqual(c.zonemessages, {});
    assert.deepEqual(c.boxes, [
      { context: 'default', mailbox: '1000', password: '1234', fullName: 'Alice Example', emails: ['alice@example.invalid'], pager: '', options: { attach: 'yes' }, file: path, line: 18 },
      {
        context: 'default', mailbox: '1001', password: '4321', fullName: 'Bob Example', emails: ['bob@example.invalid'], pager: '',
        options: { imapuser: 'bob', imappassword: 'secret', attach: 'no' }, file: path, line: 19,
      },
      { context: 'default', mailbox: '1002', password: '5555', fullName: 'Carol Example', emails: ['carol@example.invalid'], pager: '', options: {}, file: path, line: 20 },
    ]);
  });

  it('boxOption: the mailbox option, else [general], else undefined; keys case-insensitive', async () => {
    const c = await readVoicemailConf(join(CONFIG, 'voicemail.conf'));
    const [alice, bob, carol] = c.boxes;
    assert.equal(boxOption(c, bob!, 'imapuser'), 'bob');
    assert.equal(boxOption(c, bob!, 'IMAPUser'), 'bob');
    assert.equal(boxOption(c, alice!, 'imapuser'), undefined);
    assert.equal(boxOption(c, bob!, 'attach'), 'no');
    assert.equal(boxOption(c, carol!, 'attach'), 'yes', 'from [general]');
    assert.equal(boxOption(c, carol!, 'MaxMsg'), '100');
    assert.equal(boxOption(c, carol!, 'constructor'), undefined, 'no inherited object properties');
    assert.equal(boxOption(c, carol!, '__proto__'), undefined);
    assert.equal(boxTimezone(c, alice!), undefined);
  });
});

describe('readVoicemailConf: mailbox lines', () => {
  it('fields, `=` and `=>`, several emails, `-` password, options split on | only', async () => {
    const { conf: c } = await conf(
      [
        '[general]',
        'attach=yes',
        '[default]',
        '1003 = -4321,Dave,d1@example.invalid|d2@example.invalid,pager@example.invalid,attach=yes,tz=central',
        '1004 => 1,Eve, e@example.invalid ,,|tz=eastern|Attach=No|bogus',
        '1005 => 9',
        '1006 => 7,Name\\; with semicolon,f@example.invalid ; a comment',
      ].join('\n'),
    );
    const [dave, eve, only, semi] = c.boxes;
    assert.deepEqual(keys(c), ['1003@default', '1004@default', '1005@default', '1006@default']);
    assert.equal(dave!.password, '4321');
    assert.deepEqual(dave!.emails, ['d1@example.invalid', 'd2@example.invalid']);
    assert.equal(dave!.pager, 'pager@example.invalid');
    assert.deepEqual(dave!.options, { attach: 'yes,tz=central' }, 'a comma does not separate options (Asterisk)');
    assert.deepEqual(eve!.options, { tz: 'eastern', attach: 'No' });
    assert.deepEqual(eve!.emails, ['e@example.invalid']);
    assert.deepEqual(only, { ...only!, password: '9', fullName: '', emails: [], pager: '', options: {} });
    assert.equal(semi!.fullName, 'Name; with semicolon');
    assert.deepEqual(c.problems.map((p) => [p.line, p.problem.includes('"bogus"')]), [[5, true]]);
  });

  it('rejects * mailboxes and passwords, unsafe names and duplicates, naming file and line; the rest loads', async () => {
    const { conf: c, path } = await conf(
      [
        '[default]', //                                    1
        '1000 => 1,Ann', //                                2
        '*1001 => 1,Star box', //                          3
        '1002 => *12,Star password', //                    4
        '../../etc => 1,Bad,bad@example.invalid', //       5
        '1000 => 2,Duplicate', //                          6
        '10 00 => 3,Space', //                             7
        '[other]', //                                      8
        '1000 => 4,Same number in another context', //     9
        '[a/b]', //                                        10
        '2000 => 1,Unsafe context', //                     11
        '[..]', //                                         12
        '2001 => 1,Dot-dot context', //                    13
        '[default]', //                                    14
        '1000 => 5,Duplicate in a second [default]', //    15
        '1007 => 6,Fine', //                               16
      ].join('\n'),
    );
    assert.deepEqual(keys(c), ['1000@default', '1000@other', '1007@default']);
    assert.equal(c.boxes[0]!.fullName, 'Ann');
    assert.equal(c.boxes[1]!.password, '4');
    const byLine = new Map(c.problems.map((p) => [p.line, p]));
    assert.deepEqual([...byLine.keys()].sort((a, b) => a - b), [3, 4, 5, 6, 7, 10, 12, 15]);
    for (const p of c.problems) assert.equal(p.file, path);
    assert.match(byLine.get(3)!.problem, /begins with '\*'/);
    assert.match(byLine.get(4)!.problem, /password of mailbox 1002 .*begins with '\*'/);
    assert.match(byLine.get(5)!.problem, /mailbox "\.\.\/\.\.\/etc" is not a safe spool name/);
    assert.match(byLine.get(6)!.problem, new RegExp(`already defined at ${escape(path)}:2`));
    assert.match(byLine.get(7)!.problem, /not a safe spool name/);
    assert.match(byLine.get(10)!.problem, /context "a\/b" is not a safe spool name/);
    assert.match(byLine.get(12)!.problem, /context "\.\." is not a safe spool name/);
    assert.match(byLine.get(15)!.problem, /already defined/);
  });

  it('lines that do not parse are problems with file and line; the rest still loads', async () => {
    const { conf: c, path } = await conf(
      [
        'stray = before any section', //        1
        '[default]', //                          2
        'this line is nonsense', //              3
        '1000 => 1,Ann', //                      4
        '[broken', //                            5
        '= no name', //                          6
        '#exec /usr/bin/make-boxes', //          7
        '#frobnicate x', //                      8
        '1001 => 2,Bob', //                      9
      ].join('\n'),
    );
    assert.deepEqual(keys(c), ['1000@default', '1001@default']);
    assert.deepEqual(
      c.problems.map((p) => [p.file, p.line]),
      [[path, 1], [path, 3], [path, 5], [path, 6], [path, 7], [path, 8]],
    );
    assert.match(c.problems[0]!.problem, /before any \[section\]/);
    assert.match(c.problems[1]!.problem, /"this line is nonsense"/);
    assert.match(c.problems[2]!.problem, /no closing '\]'/);
    assert.match(c.problems[4]!.problem, /^#exec .* refused: vmbridge never runs a program named in a config file/);
    assert.match(c.problems[5]!.problem, /unknown directive #frobnicate/);
  });

  it('comments: ;, \\; and nested ;-- --; block comments across lines', async () => {
    const { conf: c, problems } = await conf(
      [
        '[default]',
        ';-- 1000 => 1,Hidden',
        ';-- nested --;',
        '1001 => 1,Still hidden --;1002 => 2,Shown after the block',
        '1003 => 3,A;-- inline --;B,b@example.invalid',
        '1004 => 4,x ;--- not a block, just a comment',
        '1005 => 5,y',
      ].join('\n'),
    ).then((r) => ({ ...r, problems: r.conf.problems }));
    assert.deepEqual(keys(c), ['1002@default', '1003@default', '1004@default', '1005@default']);
    assert.equal(c.boxes[1]!.fullName, 'AB');
    assert.equal(c.boxes[2]!.fullName, 'x');
    assert.deepEqual(problems, []);
  });

  it('an unterminated block comment is reported where it opened', async () => {
    const { conf: c, path } = await conf('[default]\n1000 => 1\n;-- never closed\n1001 => 2\n');
    assert.deepEqual(keys(c), ['1000@default']);
    assert.deepEqual(c.problems.map((p) => [p.file, p.line]), [[path, 3]]);
  });

  it('ISO-8859-1 names are read as such; UTF-8 stays UTF-8', async () => {
    const latin = Buffer.concat([Buffer.from('[default]\n1000 => 1,Jos'), Buffer.from([0xe9]), Buffer.from(' Latin\n')]);
    assert.equal((await conf('', { 'voicemail.conf': latin })).conf.boxes[0]!.fullName, 'José Latin');
    assert.equal((await conf('[default]\n1000 => 1,José Ütf\n')).conf.boxes[0]!.fullName, 'José Ütf');
  });
});

describe('readVoicemailConf: sections', () => {
  it('[general], [zonemessages] and the aliasescontext section are not contexts (case-insensitive)', async () => {
    const { conf: c } = await conf(
      [
        '[General]',
        'Format=wav',
        'aliasescontext=aliases',
        'tz=eastern',
        '[ZoneMessages]',
        "eastern=America/New_York|'vm-received' Q 'digits/at' IMp",
        "central = America/Chicago | 'vm-received' Q",
        'european=Europe/Berlin',
        '[aliases]',
        '5000 => 1000@default',
        '[default]',
        '1000 => 1,A,,,tz=central',
        '1001 => 1,B',
        '1002 => 1,C,,,tz=nowhere',
        '1003 => 1,D,,,tz=European',
      ].join('\n'),
    );
    assert.deepEqual(keys(c), ['1000@default', '1001@default', '1002@default', '1003@default']);
    assert.equal(c.general['format'], 'wav');
    assert.equal(c.zonemessages['central'], "America/Chicago | 'vm-received' Q");
    const [a, b, cc, d] = c.boxes;
    assert.equal(boxTimezone(c, a!), 'America/Chicago');
    assert.equal(boxTimezone(c, b!), 'America/New_York', '[general] tz=');
    assert.equal(boxTimezone(c, cc!), undefined, 'a zone that is not defined');
    assert.equal(boxTimezone(c, d!), 'Europe/Berlin', 'zone names match case-insensitively; no |format is fine');
  });

  it('templates (!) are not contexts; (+) appends; inheriting copies the template lines', async () => {
    const { conf: c } = await conf(
      ['[tmpl](!)', '9000 => 1,From template', '[sales](tmpl)', '9001 => 1,Own', '[default]', '1000 => 1', '[default](+)', '1001 => 1', '[late](+)', '7000 => 1'].join('\n'),
    );
    assert.deepEqual(keys(c), ['9000@sales', '9001@sales', '1000@default', '1001@default', '7000@late']);
    assert.equal(c.problems.length, 1);
    assert.match(c.problems[0]!.problem, /\[late\]\(\+\) adds to a section that is not defined/);
  });
});

describe('readVoicemailConf: #include', () => {
  it('globs, quotes and bare names, relative to the main file; sections carry into and out of includes', async () => {
    const { conf: c } = await conf(
      [
        '[default]',
        '1000 => 1,Main',
        '#include "boxes/*.conf"',
        '1001 => 1,Main again, still in [default]',
        '#include <more/extra.conf>',
        '#include   plain.conf',
      ].join('\n'),
      {
        'boxes/b.conf': '1201 => 1,From b, in [default] too\n[sales]\n5001 => 1,Sales from b\n',
        'boxes/a.conf': '1200 => 1,From a\n',
        'boxes/.hidden.conf': '6666 => 1,Hidden files do not match *\n',
        'boxes/c.txt': '6667 => 1,Wrong extension\n',
        'more/extra.conf': '[support]\n3000 => 1\n',
        'plain.conf': '[plain]\n4000 => 1\n',
      },
    );
    assert.deepEqual(c.problems, []);
    assert.deepEqual(keys(c), ['1000@default', '1200@default', '1201@default', '1001@default', '5001@sales', '3000@support', '4000@plain']);
    assert.equal(c.boxes[3]!.fullName, 'Main again', 'the text after a comma is the email field');
  });

  it('an absolute include path is used as is', async () => {
    const abs = join(root, `absolute-${++counter}.conf`);
    await writeFile(abs, '8000 => 1,Absolute\n');
    const { conf: c } = await conf(`[default]\n#include "${abs}"\n`);
    assert.deepEqual(keys(c), ['8000@default']);
    assert.equal(c.boxes[0]!.file, abs);
  });

  it('problems in an included file name that file and its own line numbers', async () => {
    const { conf: c, dir } = await conf('[default]\n1000 => 1\n#include users.conf\n', { 'users.conf': '1001 => 1\nnonsense here\n../x => 1\n' });
    const users = join(dir, 'users.conf');
    assert.deepEqual(keys(c), ['1000@default', '1001@default']);
    assert.deepEqual(c.problems.map((p) => [p.file, p.line]), [[users, 2], [users, 3]]);
    assert.equal(c.boxes[1]!.file, users);
    assert.equal(c.boxes[1]!.line, 1);
  });

  it('#tryinclude of a missing file or an empty glob is fine; #include of one is a problem', async () => {
    const { conf: c, path, dir } = await conf(
      ['[default]', '#tryinclude "missing.conf"', '#tryinclude "nothing-*.conf"', '#include "missing.conf"', '#include "nothing-*.conf"', '#include', '1000 => 1'].join('\n'),
    );
    assert.deepEqual(keys(c), ['1000@default']);
    assert.deepEqual(c.problems.map((p) => [p.file, p.line]), [[path, 4], [path, 5], [path, 6]]);
    assert.match(c.problems[0]!.problem, new RegExp(`^#include "missing\\.conf" \\(${escape(join(dir, 'missing.conf'))}\\): no such file$`));
    assert.match(c.problems[1]!.problem, /no file matches/);
    assert.match(c.problems[2]!.problem, /needs a file name/);
  });

  it('an include cycle is reported and broken; every box still loads once', async () => {
    const { conf: c, dir, path } = await conf('[default]\n1000 => 1\n#include "a.conf"\n#include "voicemail.conf"\n', {
      'a.conf': '1001 => 1\n#include "b.conf"\n',
      'b.conf': '1002 => 1\n#include "a.conf"\n',
    });
    assert.deepEqual(keys(c), ['1000@default', '1001@default', '1002@default']);
    assert.deepEqual(c.problems.map((p) => [p.file, p.line]), [[join(dir, 'b.conf'), 2], [path, 4]]);
    for (const p of c.problems) assert.match(p.problem, /include cycle/);
  });

  it('a missing main file throws ConfigError naming the file', async () => {
    const missing = join(root, 'no-such-dir', 'voicemail.conf');
    await assert.rejects(readVoicemailConf(missing), (err: unknown) => err instanceof ConfigError && err.file === missing && err.message.includes(missing));
  });
});

describe('scanConfigText', () => {
  it('classifies lines, with `name += value` and escaped names', () => {
    const { lines } = scanConfigText('[a](!,t1 , t2)\nx += y\n\\#notdirective = 1\n#include  "f.conf"  \n');
    assert.deepEqual(lines, [
      { kind: 'category', line: 1, name: 'a', options: ['!', 't1', 't2'] },
      { kind: 'variable', line: 2, name: 'x', value: 'y', object: false, append: true },
      { kind: 'variable', line: 3, name: '#notdirective', value: '1', object: false, append: false },
      { kind: 'directive', line: 4, directive: 'include', argument: '"f.conf"' },
    ]);
  });
});

describe('readAsteriskConf', () => {
  it('reads the fixture: lockmode lockfile, astspooldir, empty runuser/rungroup', async () => {
    const c = await readAsteriskConf(join(CONFIG, 'asterisk.conf'));
    assert.deepEqual(c, { lockmode: 'lockfile', astspooldir: '/var/spool/asterisk', problems: [] });
  });

  it('flock, run user and group; an invalid lockmode means lockfile, like Asterisk', async () => {
    const dir = await files({
      'a.conf': '[options]\nlockmode = FLOCK\nrunuser = asterisk\nrungroup => asterisk\n[directories]\nastspooldir => /srv/spool\n',
      'b.conf': '[options]\nlockmode = fcntl\n',
      'c.conf': '[directories](!)\nastspooldir => /ignored\n[options]\n',
    });
    assert.deepEqual(await readAsteriskConf(join(dir, 'a.conf')), { lockmode: 'flock', astspooldir: '/srv/spool', runuser: 'asterisk', rungroup: 'asterisk', problems: [] });
    const b = await readAsteriskConf(join(dir, 'b.conf'));
    assert.equal(b.lockmode, 'lockfile');
    assert.deepEqual(b.problems.map((p) => p.line), [2]);
    assert.deepEqual(await readAsteriskConf(join(dir, 'c.conf')), { lockmode: 'lockfile', problems: [] }, 'a template [directories](!) is ignored by Asterisk');
  });

  it('a missing file throws ConfigError', async () => {
    await assert.rejects(readAsteriskConf(join(root, 'nope', 'asterisk.conf')), ConfigError);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
