/**
 * `vmbridge doctor`, run as the real command against a private Dovecot with UIDPLUS and one
 * without, and against settings that are wrong in the ways administrators get them wrong; and a
 * login turned down for too many connections ([LIMIT], a Dovecot with mail_max_userip_connections
 * lowered) or by a server whose token check is down ([UNAVAILABLE]), each told from a wrong password.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { SMTPServer } from 'smtp-server';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startIntrospectionServer, type IntrospectionServer } from '../support/oauth-introspection.js';
import { freePort } from '../support/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAPABILITIES = ['IDLE', 'NOTIFY', 'CONDSTORE', 'QRESYNC', 'MOVE', 'UIDPLUS', 'QUOTA', 'SPECIAL-USE'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `vmbridge doctor` as an administrator runs it; no VMBRIDGE_* variable of this process leaks in. */
function doctor(args: readonly string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMBRIDGE_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'doctor', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    // Generous: two cores, other tests may run; a hang still fails the test.
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A settings file for the harness's servers (JSON is YAML), with `change` applied. */
async function settingsFile(h: Harness, name: string, change: (s: Record<string, Record<string, unknown>>) => void = () => undefined): Promise<string> {
  const s: Record<string, Record<string, unknown>> = {
    spool: { dir: h.spoolDir, voicemailConf: h.confPath, watch: false, sweepSeconds: 0 },
    redis: { url: h.redisUrl, prefix: 'doctor' },
    imap: { host: '127.0.0.1', port: h.dovecot.port, secure: false, requireTls: false },
    email: { messageIdDomain: 'vmbridge.test' },
    log: { level: 'warn' },
  };
  change(s);
  const path = join(h.dir, `${name}.yaml`);
  await writeFile(path, JSON.stringify(s, null, 2));
  return path;
}

/** The line for one capability, e.g. "  WARN  UIDPLUS: missing -> ...". */
function capabilityLine(out: string, name: string): string {
  const line = out.split('\n').find((l) => new RegExp(`^\\s+(OK|WARN|INFO|FAIL)\\s+${name}: `).test(l));
  assert.ok(line, `no line for ${name} in:\n${out}`);
  return line;
}

describe('vmbridge doctor against real servers', { timeout: 600_000 }, () => {
  let full: Harness;
  let noUidplus: Harness;
  let withMaster: DovecotServer;

  before(async () => {
    full = await startHarness({ boxes: [{ mailbox: '1000' }, { mailbox: '1001' }, { mailbox: '1002' }] });
    noUidplus = await startHarness({ boxes: [{ mailbox: '2000' }], omitCapabilities: ['UIDPLUS'] });
    withMaster = await startDovecot({ users: [{ user: 'u3000', pass: 'pw-u3000' }, { user: 'u3001', pass: 'pw-u3001' }], masterUser: { user: 'vmb', pass: 'Master-Pw-4412' } });
  });
  after(async () => {
    await full?.stop();
    await noUidplus?.stop();
    await withMaster?.stop();
  });

  it('with UIDPLUS: exit 0, every account logs in, each capability with what vmbridge does because of it', async () => {
    const run = await doctor(['--config', await settingsFile(full, 'full')]);
    const out = run.stdout;
    assert.equal(run.code, 0, `exit code; output:\n${out}\n${run.stderr}`);
    for (const user of ['u1000', 'u1001', 'u1002']) assert.match(out, new RegExp(`OK\\s+login ${user}: works`), user);
    for (const cap of CAPABILITIES) assert.match(capabilityLine(out, cap), new RegExp(`^\\s+OK\\s+${cap}: yes -> \\S`), cap);
    assert.match(capabilityLine(out, 'UIDPLUS'), /UIDPLUS: yes -> deleted voicemail emails are removed with UID EXPUNGE of exactly their UID$/);
    assert.match(capabilityLine(out, 'MOVE'), /MOVE: yes -> filing a voicemail email to Work\/Family\/Friends is one UID MOVE$/);
    assert.match(capabilityLine(out, 'SPECIAL-USE'), /the trash folder is the one the server marks \\Trash: "Trash"/);
    assert.match(out, /hierarchy delimiter "\/"/);
    assert.match(out, /new, old and urgent voicemail: "INBOX" \(exists\)/);
    for (const f of ['Work', 'Family', 'Friends']) assert.match(out, new RegExp(`${f}: "${f}" \\(created when first needed\\)`));
    assert.match(out, /Trash: "Trash" \(the server's \\Trash folder; exists\); not used: deleted voicemail emails are removed with UID EXPUNGE/);
    assert.match(out, /OK\s+redis:\/\/127\.0\.0\.1:\d+\/?: PING answered PONG, Redis \d+\.\d+/);
    assert.match(out, /OK\s+\S+\/voicemail is readable: \d+ mailbox folders?/);
    assert.match(out, /OK\s+\S+voicemail\.conf: 3 mailboxes, 0 problems; 3 with an IMAP account \(3 distinct accounts\)/);
    assert.match(out, /^Result: ready \(0 warnings\)$/m);
  });

  it('without UIDPLUS: still exit 0; UIDPLUS is a warning that says deleted emails go to Trash with MOVE', async () => {
    const run = await doctor(['--config', await settingsFile(noUidplus, 'no-uidplus')]);
    const out = run.stdout;
    assert.equal(run.code, 0, `missing UIDPLUS is not fatal; output:\n${out}\n${run.stderr}`);
    assert.match(capabilityLine(out, 'UIDPLUS'), /^\s+WARN\s+UIDPLUS: missing -> deleted voicemail emails are moved to "Trash" with UID MOVE \(MOVE present\); a bare EXPUNGE is never sent$/);
    assert.match(capabilityLine(out, 'MOVE'), /^\s+OK\s+MOVE: yes -> /);
    assert.match(out, /Trash: "Trash" \(the server's \\Trash folder; exists\); deleted voicemail emails go here/);
    assert.match(out, /^Result: ready \(1 warning\)$/m);

    // imap.deleteMode expunge on the same server: flagged only, and the doctor says so.
    const expunge = await doctor(['--config', await settingsFile(noUidplus, 'no-uidplus-expunge', (s) => (s.imap!.deleteMode = 'expunge'))]);
    assert.equal(expunge.code, 0);
    assert.match(capabilityLine(expunge.stdout, 'UIDPLUS'), /UIDPLUS: missing -> deleted voicemail emails are only flagged \\Deleted, .* \(imap\.deleteMode is expunge\); a bare EXPUNGE is never sent$/);
  });

  it('--json gives the same facts to machines', async () => {
    const run = await doctor(['--config', await settingsFile(noUidplus, 'json'), '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { ok: boolean; failures: number; warnings: number; results: { section: string; status: string; message: string; data?: Record<string, unknown> }[] };
    assert.equal(report.ok, true);
    assert.equal(report.failures, 0);
    const caps = new Map(report.results.filter((r) => r.data?.capability).map((r) => [r.data!.capability, r]));
    assert.deepEqual([...caps.keys()].sort(), [...CAPABILITIES].sort());
    assert.equal(caps.get('UIDPLUS')!.data!.present, false);
    assert.equal(caps.get('UIDPLUS')!.status, 'warn');
    assert.equal(caps.get('MOVE')!.data!.present, true);
    assert.ok(report.results.some((r) => r.data?.login === 'ok' && r.data.user === 'u2000'));
  });

  it('a wrong password: exit 1, names the account and why, and never prints a password', async () => {
    const wrong = 'Wr0ng-Secret-7731';
    const conf = join(full.dir, 'wrong.conf');
    await writeFile(conf, [
      '[general]', 'format=wav', '',
      '[default]',
      '1000 => 1234,Owner 1000,u1000@example.invalid,,imapuser=u1000|imappassword=pw-u1000',
      `1001 => 1234,Owner 1001,u1001@example.invalid,,imapuser=u1001|imappassword=${wrong}`,
      '',
    ].join('\n'));
    const run = await doctor(['--config', await settingsFile(full, 'wrong', (s) => (s.spool!.voicemailConf = conf))]);
    assert.equal(run.code, 1, `exit code; output:\n${run.stdout}`);
    assert.match(run.stdout, /FAIL\s+login u1001: authentication failed/);
    assert.match(run.stdout, /OK\s+login u1000: works/);
    assert.match(run.stdout, /^Result: NOT ready: 1 failure/m);
    for (const secret of [wrong, 'pw-u1000']) {
      assert.equal(run.stdout.includes(secret), false, 'no password on stdout');
      assert.equal(run.stderr.includes(secret), false, 'no password on stderr');
    }
  });

  it('Redis that does not answer and a spool that is not there: exit 1, each named', async () => {
    const nobody = await freePort();
    const run = await doctor(['--config', await settingsFile(full, 'broken', (s) => {
      s.redis!.url = `redis://127.0.0.1:${nobody}`;
      s.spool!.dir = join(full.dir, 'no-such-spool');
    })]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, new RegExp(`FAIL\\s+redis://127\\.0\\.0\\.1:${nobody}/?: not reachable: .*ECONNREFUSED`));
    assert.match(run.stdout, /FAIL\s+spool\.dir \S+no-such-spool does not exist/);
    assert.match(run.stdout, /OK\s+login u1000: works/, 'the IMAP checks still run');
  });

  it('voicemail.conf missing: exit 1; --accounts bounds the logins and says how many were skipped', async () => {
    const missing = await doctor(['--config', await settingsFile(full, 'no-conf', (s) => (s.spool!.voicemailConf = join(full.dir, 'nope.conf')))]);
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stdout, /FAIL\s+.*nope\.conf/);
    assert.match(missing.stdout, /FAIL\s+no account to log in with/);

    const bounded = await doctor(['--config', await settingsFile(full, 'bounded'), '--accounts', '2']);
    assert.equal(bounded.code, 0, bounded.stdout);
    assert.equal(bounded.stdout.match(/OK\s+login u\d+: works/g)?.length, 2, 'two logins');
    assert.match(bounded.stdout, /INFO\s+1 of 3 accounts not tried: at most 2 are tried/);
  });

  it('a master login is tried once for every account; a wrong master password is a failure that prints no password', async () => {
    const conf = join(full.dir, 'master.conf');
    await writeFile(conf, ['[general]', '', '[default]', '3000 => 1234,Owner 3000,,,imapuser=u3000', '3001 => 1234,Owner 3001,,,imapuser=u3001', ''].join('\n'));
    const passFile = (pass: string, name: string): Promise<string> => writeFile(join(full.dir, name), `${pass}\n`, { mode: 0o600 }).then(() => join(full.dir, name));
    const settings = (name: string, file: string): Promise<string> => settingsFile(full, name, (s) => {
      s.spool!.voicemailConf = conf;
      s.imap = { host: '127.0.0.1', port: withMaster.port, secure: false, requireTls: false, login: { mode: 'master', masterUser: 'vmb', masterPasswordFile: file } };
    });

    const good = await doctor(['--config', await settings('master', await passFile('Master-Pw-4412', 'master-pw'))]);
    assert.equal(good.code, 0, good.stdout);
    assert.equal(good.stdout.match(/login u\d+\*vmb \(master login\): works/g)?.length, 1, 'one login');
    assert.match(good.stdout, /INFO\s+1 of 2 accounts not tried: they use the same master login/);

    const bad = await doctor(['--config', await settings('master-bad', await passFile('Not-The-Master-Pw', 'master-bad'))]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, /FAIL\s+login u3000\*vmb \(master login\): authentication failed/);
    for (const secret of ['Not-The-Master-Pw', 'Master-Pw-4412']) assert.equal(`${bad.stdout}${bad.stderr}${good.stdout}${good.stderr}`.includes(secret), false);
  });

  it('audio: the tool that makes the MP3 is checked; a missing one fails naming the packages, and original needs none', async () => {
    const good = await doctor(['--config', await settingsFile(full, 'audio-good')]);
    assert.match(good.stdout, /OK\s+attachments: \d+ mp3; sox \S+ writes MP3/);
    const missing = await doctor(['--config', await settingsFile(full, 'audio-missing', (s) => { s['email'] = { ...s['email'], audioTool: { command: join(full.dir, 'no-such-sox') } }; })]);
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stdout, /FAIL\s+the audio tool ".*no-such-sox" cannot be run \(ENOENT\); install it \(Debian: apt-get install sox libsox-fmt-mp3\)/);
    const original = await doctor(['--config', await settingsFile(full, 'audio-original', (s) => { s['email'] = { ...s['email'], audio: 'original', audioTool: { command: join(full.dir, 'no-such-sox') } }; })]);
    assert.match(original.stdout, /OK\s+attachments: \d+ original; no conversion needed, so no audio tool/);
  });

  it('--help lists the checks that exist', async () => {
    const run = await doctor(['--help']);
    assert.equal(run.code, 0);
    for (const name of ['spool', 'voicemail.conf', 'audio', 'redis', 'imap']) assert.match(run.stdout, new RegExp(`^  ${name.replace('.', '\\.')}\\s+\\S`, 'm'), name);
    assert.match(run.stdout, /--json/);
  });
});

describe('vmbridge doctor: a login turned down for another reason than the credentials', { timeout: 300_000 }, () => {
  const LIMIT = 2;
  let h: Harness;
  let limited: DovecotServer;
  let intro: IntrospectionServer;
  const held: ImapFlow[] = [];

  before(async () => {
    // Redis, spool and voicemail.conf of a harness; the IMAP server is this one.
    h = await startHarness({ boxes: [{ mailbox: '5000' }] });
    intro = await startIntrospectionServer();
    limited = await startDovecot({
      users: [{ user: 'u5000', pass: 'pw-u5000' }, { user: 'u5001', pass: 'pw-u5001' }],
      maxUserIpConnections: LIMIT,
      oauth2: { introspectionUrl: intro.urlFor('post') },
    });
  });
  after(async () => {
    for (const c of held) await c.logout().catch(() => c.close());
    await limited?.stop();
    await intro?.close();
    await h?.stop();
  });

  /** Settings for the limited Dovecot with both users in voicemail.conf, logging in as `login` says. */
  const limitedSettings = async (name: string, login: Record<string, unknown> = {}): Promise<string> => {
    const conf = join(h.dir, `${name}.conf`);
    await writeFile(conf, [
      '[general]', '', '[default]',
      '5000 => 1234,Owner 5000,,,imapuser=u5000|imappassword=pw-u5000',
      '5001 => 1234,Owner 5001,,,imapuser=u5001|imappassword=pw-u5001',
      '',
    ].join('\n'));
    return settingsFile(h, name, (s) => {
      s.spool!.voicemailConf = conf;
      s.imap = { host: '127.0.0.1', port: limited.port, secure: false, requireTls: false, login };
    });
  };

  it('[LIMIT]: too many connections for the user from this address, what to do, and no "authentication failed"', async () => {
    // Another client of u5000 on this host holds every session the server allows.
    for (let i = 0; i < LIMIT; i++) {
      const c = new ImapFlow({ host: '127.0.0.1', port: limited.port, secure: false, auth: { user: 'u5000', pass: 'pw-u5000' }, logger: false });
      c.on('error', () => undefined);
      await c.connect();
      held.push(c);
    }
    const run = await doctor(['--config', await limitedSettings('limit')]);
    const out = run.stdout;
    assert.equal(run.code, 1, `exit code; output:\n${out}\n${run.stderr}`);
    const line = out.split('\n').find((l) => /login u5000:/.test(l)) ?? '';
    assert.match(line, /^\s+FAIL\s+login u5000: too many connections: the server allows no more IMAP sessions for this user from this address \(server said: \[LIMIT\] Maximum number of connections from user\+IP exceeded/);
    assert.match(line, /The password is not the problem\. .*mail_max_userip_connections\); imap\.maxConnectionsPerUser \(now 2\) must stay below it/);
    assert.doesNotMatch(line, /authentication failed/);
    // One user at its limit says nothing about the next one, nor about the server.
    assert.match(out, /OK\s+login u5001: works/);
    assert.match(out, /^Result: NOT ready: 1 failure/m);
    for (const secret of ['pw-u5000', 'pw-u5001']) assert.equal(`${out}${run.stderr}`.includes(secret), false, 'no password printed');
    // --json: the reason, for machines.
    const json = await doctor(['--config', await limitedSettings('limit-json'), '--json']);
    const report = JSON.parse(json.stdout) as { results: { data?: Record<string, unknown> }[] };
    assert.deepEqual(report.results.filter((r) => r.data?.login !== undefined).map((r) => [r.data!.user, r.data!.login, r.data!.reason]), [['u5000', 'failed', 'limit'], ['u5001', 'ok', undefined]]);
  });

  it('[UNAVAILABLE]: the server cannot check the token now, which is no wrong token', async () => {
    const dir = h.dir;
    for (const user of ['u5000', 'u5001']) {
      const token = `at-${randomBytes(24).toString('base64url')}`;
      intro.addToken(token, user, { ttlMs: 3_600_000 });
      await writeFile(join(dir, `${user}.token`), `${token}\n`, { mode: 0o600 });
    }
    // The authorization server is down: Dovecot cannot check any token.
    intro.unavailable = true;
    try {
      const run = await doctor(['--config', await limitedSettings('unavailable', { mode: 'oauth2', tokenFile: join(dir, '{user}.token') })]);
      const out = run.stdout;
      assert.equal(run.code, 1, `exit code; output:\n${out}\n${run.stderr}`);
      const line = out.split('\n').find((l) => /login u5001:/.test(l)) ?? '';
      assert.match(line, /^\s+FAIL\s+login u5001: the server cannot log this user in right now, for a reason other than the password or token \(server said: \[UNAVAILABLE\] [^)]*\): .*See the mail server's log and run the doctor again/);
      assert.doesNotMatch(out, /authentication failed/);
    } finally {
      intro.unavailable = false;
    }
  });
});

describe('vmbridge doctor: AMI and SMTP', { timeout: 600_000 }, () => {
  let h: Harness;
  let ami: AmiTestServer;
  let smtp: SMTPServer;
  let smtpPort: number;
  const smtpLogins: string[] = [];

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: '1000' }] });
    ami = await startAmiServer({ spoolDir: h.spoolDir, users: [{ username: 'vmbridge', secret: 'Ami-Secret-5521' }], authFailureDelayMs: 20 });
    // A sink that accepts one login over plain TCP (loopback only) and never stores anything.
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, cb) {
        smtpLogins.push(auth.username ?? '');
        if (auth.username === 'alerts' && auth.password === 'Smtp-Pw-8812') cb(null, { user: 'alerts' });
        else cb(new Error('Invalid username or password'));
      },
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => cb());
      },
      logger: false,
    });
    smtpPort = await freePort();
    await new Promise<void>((resolve, reject) => {
      smtp.once('error', reject);
      smtp.listen(smtpPort, '127.0.0.1', () => resolve());
    });
  });
  after(async () => {
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
    await ami?.close();
    await h?.stop();
  });

  const secretFile = async (name: string, secret: string): Promise<string> => {
    const path = join(h.dir, name);
    await writeFile(path, `${secret}\n`, { mode: 0o600 });
    return path;
  };

  it('AMI up with the right secret and an SMTP server that accepts the login: exit 0, both OK', async () => {
    const amiSecret = await secretFile('ami-ok', 'Ami-Secret-5521');
    const smtpPass = await secretFile('smtp-ok', 'Smtp-Pw-8812');
    const run = await doctor(['--config', await settingsFile(h, 'ami-smtp-ok', (s) => {
      s.asterisk = { ami: { host: '127.0.0.1', port: ami.port, username: 'vmbridge', secretFile: amiSecret } };
      s.alerts = { to: ['admin@example.invalid'], smtp: { host: '127.0.0.1', port: smtpPort, requireTLS: false, auth: { user: 'alerts', passFile: smtpPass } } };
    })]);
    assert.equal(run.code, 0, `exit code; output:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, new RegExp(`AMI 127\\.0\\.0\\.1:${ami.port}\\n\\s+OK\\s+login vmbridge: works, AMI version \\S+`));
    assert.match(run.stdout, new RegExp(`SMTP 127\\.0\\.0\\.1:${smtpPort}\\n\\s+OK\\s+answers; STARTTLS if offered: works; login alerts accepted`));
    assert.ok(smtpLogins.includes('alerts'), 'the doctor logged in at the SMTP server');
    for (const secret of ['Ami-Secret-5521', 'Smtp-Pw-8812']) assert.equal(`${run.stdout}${run.stderr}`.includes(secret), false);
  });

  it('a wrong AMI secret and a closed SMTP port: exit 1, each failure named, no secret printed', async () => {
    const amiSecret = await secretFile('ami-bad', 'Not-The-Ami-Secret');
    const closed = await freePort();
    const run = await doctor(['--config', await settingsFile(h, 'ami-smtp-bad', (s) => {
      s.asterisk = { ami: { host: '127.0.0.1', port: ami.port, username: 'vmbridge', secretFile: amiSecret } };
      s.alerts = { to: ['admin@example.invalid'], smtp: { host: '127.0.0.1', port: closed, requireTLS: false } };
    })]);
    assert.equal(run.code, 1, `exit code; output:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /FAIL\s+login vmbridge: login refused: .*asterisk\.ami/);
    assert.match(run.stdout, new RegExp(`SMTP 127\\.0\\.0\\.1:${closed}\\n\\s+FAIL\\s+not reachable: .*ECONNREFUSED`));
    assert.match(run.stdout, /^Result: NOT ready: 2 failures/m);
    assert.equal(`${run.stdout}${run.stderr}`.includes('Not-The-Ami-Secret'), false);
  });
});
