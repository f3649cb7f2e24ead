/**
 * Every option of Asterisk's voicemail.conf is accounted for: test/fixtures/voicemail-options sets
 * each option app_voicemail's sample file documents (names from Asterisk, values made up), across
 * [general], mailbox lines and an #include, and `vmbridge conf-check` says what vmbridge does with
 * each.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkOptions, renderOptionReport, unsupportedOptions } from '../../src/config/conf-check.js';
import { catalogNames, classifyOption } from '../../src/config/option-catalog.js';
import { readVoicemailConf } from '../../src/config/voicemail-conf.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILE = fileURLToPath(new URL('../fixtures/voicemail-options/voicemail.conf', import.meta.url));

/** The options Asterisk's voicemail.conf.sample documents (its option names, as facts). */
const SAMPLE_OPTIONS = `format serveremail attach maxmsg maxsecs minsecs maxgreet skipms maxsilence silencethreshold maxlogins moveheard
forward_urgent_auto userscontext aliasescontext externnotify smdienable smdiport externpass externpassnotify externpasscheck directoryintro
charset adsifdn adsisec adsiver pbxskip fromstring usedirectory odbcstorage odbctable odbc_audio_on_disk emailsubject emailbody
pagerfromstring pagersubject pagerbody emaildateformat pagerdateformat mailcmd pollmailboxes pollfreq imapgreetings greetingsfolder
imapparentfolder imapserver imapport imapflags imapfolder authuser authpassword imapopentimeout imapclosetimeout imapreadtimeout
imapwritetimeout imap_poll_logout tz locale attachfmt attachextrecs saycid cidinternalcontexts sayduration saydurationm dialout
sendvoicemail searchcontexts callback exitcontext review leaveurgent operator envelope delete alias volgain nextaftercmd forcename
forcegreetings hidefromdir tempgreetwarn passwordlocation messagewrap minpassword vm-login vm-newuser vm-password vm-newpassword
vm-passchanged vm-reenterpassword vm-mismatch vm-invalid-password vm-pls-try-again vm-prepend-timeout listen-control-forward-key
listen-control-reverse-key listen-control-pause-key listen-control-restart-key listen-control-stop-key backupdeleted tps_queue_high
tps_queue_low imapuser imappassword imapvmshareid`.split(/\s+/);

/** What an email, its attachment, its folders or its IMAP account depends on, and vmbridge does. */
const MUST_BE_USED = ['format', 'serveremail', 'attach', 'attachfmt', 'fromstring', 'emailsubject', 'emailbody', 'emaildateformat', 'locale', 'tz', 'pbxskip', 'maxmsg', 'backupdeleted', 'imapuser', 'imappassword', 'aliasescontext', 'externnotify'];

describe('every voicemail.conf option is accounted for', () => {
  it('each option of the sample is known: used, phone-side or not supported, with a reason', () => {
    for (const name of SAMPLE_OPTIONS) {
      const info = classifyOption(name);
      assert.notEqual(info.use, 'unknown', name);
      assert.ok(info.why.length > 10, `${name}: a reason`);
    }
    for (const name of MUST_BE_USED) assert.equal(classifyOption(name).use, 'used', name);
    assert.equal(classifyOption('Attach').use, 'used', 'names compare without case');
    assert.equal(classifyOption('rip').use, 'unknown');
  });

  it('the fixture sets every sample option; conf-check reports each once, from [general], mailboxes and the #include', async () => {
    const conf = await readVoicemailConf(FILE);
    const report = checkOptions(conf);
    const names = report.map((r) => r.option);
    for (const name of SAMPLE_OPTIONS) assert.ok(names.includes(name), `${name} reported`);
    assert.equal(new Set(names).size, names.length, 'once each');
    assert.ok(names.includes('[zonemessages]'));
    assert.deepEqual(report.find((r) => r.option === 'imapvmshareid')?.where, ['4324@default'], 'from the included mailboxes file');
    assert.deepEqual(report.find((r) => r.option === 'attach')?.where, ['[general]', '4069@default']);
    assert.equal(report.find((r) => r.option === 'rip')?.use, 'unknown');
    const lines = renderOptionReport(report);
    assert.match(lines.find((l) => l.startsWith('emailsubject:'))!, /^emailsubject: used — /);
    assert.match(lines.find((l) => l.startsWith('maxsecs:'))!, /^maxsecs: phone-side — /);
    assert.match(lines.find((l) => l.startsWith('odbcstorage:'))!, /^odbcstorage: used — /);
    assert.match(lines.find((l) => l.startsWith('imapserver:'))!, /^imapserver: used — imap\.host/);
    assert.match(lines.find((l) => l.startsWith('imapvmshareid:'))!, /^imapvmshareid: used — /);
    assert.ok(unsupportedOptions(conf).every((r) => r.use === 'not supported'));
    assert.match(lines.find((l) => l.startsWith('charset:'))!, /^charset: used — /);
    assert.ok(unsupportedOptions(conf).some((r) => r.option === 'delete'));
  });

  it('#include and #tryinclude work; #exec is refused naming its line', async () => {
    const conf = await readVoicemailConf(FILE);
    assert.ok(conf.boxes.some((b) => b.mailbox === '4324'), 'a mailbox from the #include');
    const exec = conf.problems.find((p) => p.problem.startsWith('#exec'));
    assert.ok(exec, 'the #exec line is a problem');
    assert.equal(exec.file, FILE);
    assert.match(exec.problem, /refused: vmbridge never runs a program named in a config file/);
    assert.equal(conf.problems.some((p) => p.problem.includes('missing-is-fine')), false, 'a missing #tryinclude file is not an error');
  });

  it('vmbridge conf-check prints one line per option and exits 0; a file that cannot be read exits 1', () => {
    const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'conf-check', file], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VMBRIDGE_CONFIG: '/nonexistent.yaml' } });
    const ok = run(FILE);
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stdout.trim().split('\n');
    assert.match(lines[0]!, /voicemail\.conf: 4 mailboxes, \d+ options/);
    assert.ok(lines.some((l) => /^format: used — /.test(l)));
    assert.ok(lines.some((l) => /voicemail\.conf:\d+: #exec .* refused/.test(l)), 'the #exec line, with its file and line');
    const optionLines = lines.filter((l) => / — /.test(l) && !l.includes('#exec'));
    assert.ok(optionLines.every((l) => /^\S+: (used|phone-side|not supported|unknown) — \S/.test(l)), optionLines.join('\n'));
    const bad = run('/nonexistent/voicemail.conf');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /cannot read \/nonexistent\/voicemail\.conf/);
  });

  it('the catalog lists no option twice and none without a reason', () => {
    const names = catalogNames();
    assert.equal(new Set(names).size, names.length);
    for (const n of names) assert.ok(classifyOption(n).why.length > 10, n);
  });
});

describe('docs/voicemail-conf.md', () => {
  it('names every option of the catalog, under its use', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(fileURLToPath(new URL('../../docs/voicemail-conf.md', import.meta.url)), 'utf8');
    for (const name of catalogNames()) {
      const from = doc.indexOf(`### ${classifyOption(name).use}\n`);
      const to = doc.indexOf('\n### ', from + 4);
      const section = doc.slice(from, to < 0 ? undefined : to);
      assert.ok(section.includes(`| \`${name}\` |`), `${name} under ${classifyOption(name).use}`);
    }
  });
});
