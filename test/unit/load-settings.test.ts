import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/errors.js';
import { envNameOf, loadSettings, settingKeys } from '../../src/config/load-settings.js';
import type { LoadSettingsOptions } from '../../src/config/load-settings.js';

const EXAMPLE = fileURLToPath(new URL('../../config/vmbridge.example.yaml', import.meta.url));

let dir: string;
/** A default location that never exists, so no test depends on the machine's /etc. */
let noDefault: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmbridge-settings-'));
  noDefault = join(dir, 'absent', 'vmbridge.yaml');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function file(text: string): Promise<string> {
  const path = join(dir, `settings-${++n}.yaml`);
  await writeFile(path, text);
  return path;
}

function load(opts: LoadSettingsOptions) {
  return loadSettings({ env: {}, defaultFile: noDefault, ...opts });
}

/** Asserts a ConfigError whose fields and message match. */
async function rejects(p: Promise<unknown>, want: { key?: string; file?: string; includes?: string[] }): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG');
    if (want.key !== undefined) assert.equal(err.key, want.key, err.message);
    if (want.file !== undefined) assert.equal(err.file, want.file, err.message);
    for (const s of want.includes ?? []) assert.ok(err.message.includes(s), `message lacks ${JSON.stringify(s)}: ${err.message}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

const MINIMAL = 'imap:\n  host: mail.example.com\n';

describe('loadSettings: the file', () => {
  it('reads a valid file and fills in the defaults', async () => {
    const path = await file(`
spool:
  dir: /srv/asterisk/spool
  sweepSeconds: 60
redis:
  url: redis://redis.example.com:6380/2
imap:
  host: mail.example.com
  login:
    userTemplate: "{mailbox}@pbx.example.com"
  folders:
    parent: Voicemail
log:
  level: debug
`);
    const { settings, file: loaded, warnings } = await load({ file: path });
    assert.equal(loaded, path);
    assert.deepEqual(warnings, []);
    assert.equal(settings.spool.dir, '/srv/asterisk/spool');
    assert.equal(settings.spool.sweepSeconds, 60);
    assert.equal(settings.spool.watch, true);
    assert.equal(settings.redis.url, 'redis://redis.example.com:6380/2');
    assert.equal(settings.redis.prefix, 'vmbridge');
    assert.equal(settings.imap.port, 993);
    assert.equal(settings.imap.secure, true);
    assert.equal(settings.imap.tls.rejectUnauthorized, true);
    assert.equal(settings.imap.login.mode, 'per-user');
    assert.equal(settings.imap.login.userTemplate, '{mailbox}@pbx.example.com');
    assert.equal(settings.imap.folders.parent, 'Voicemail');
    assert.equal(settings.imap.folders.inbox, 'INBOX');
    assert.equal(settings.log.level, 'debug');
  });

  it('treats a key with no value as not set', async () => {
    const path = await file('imap:\n  host: mail.example.com\n  port:\n  tls:\n    caFile:\n');
    const { settings } = await load({ file: path });
    assert.equal(settings.imap.port, 993);
    assert.equal(settings.imap.tls.caFile, undefined);
  });

  it('finds the file through VMBRIDGE_CONFIG, and the default location', async () => {
    const path = await file(MINIMAL);
    assert.equal((await load({ env: { VMBRIDGE_CONFIG: path } })).file, path);
    assert.equal((await loadSettings({ env: {}, defaultFile: path })).file, path);
    // An explicit file wins over VMBRIDGE_CONFIG.
    const other = await file('imap:\n  host: other.example.com\n');
    assert.equal((await load({ file: other, env: { VMBRIDGE_CONFIG: path } })).settings.imap.host, 'other.example.com');
  });

  it('names a settings file that was asked for but does not exist', async () => {
    const missing = join(dir, 'nope.yaml');
    await rejects(load({ file: missing }), { file: missing, includes: [missing, 'does not exist'] });
    await rejects(load({ env: { VMBRIDGE_CONFIG: missing } }), { includes: [missing, 'VMBRIDGE_CONFIG'] });
  });

  it('reports a YAML syntax error with file:line:col', async () => {
    const path = await file('imap:\n  host: mail.example.com\n   port: 993\n');
    const err = await rejects(load({ file: path }), { file: path, includes: ['YAML syntax error'] });
    assert.match(err.message, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: `));
  });

  it('rejects a duplicate key as a YAML error with its line', async () => {
    const path = await file('imap:\n  host: a\n  host: b\n');
    await rejects(load({ file: path }), { includes: [`${path}:3:3`, 'unique'] });
  });

  it('rejects a file whose top level is not a mapping', async () => {
    const path = await file('- imap\n- redis\n');
    await rejects(load({ file: path }), { file: path, includes: ['top level', 'spool, redis, imap'] });
  });

  it('names key, file, line, what was wrong and what is accepted for a bad type', async () => {
    const path = await file('imap:\n  host: mail.example.com\n  port: "nine-nine-three"\n');
    await rejects(load({ file: path }), {
      key: 'imap.port',
      file: path,
      includes: [`${path}:3:3: imap.port`, 'expected number', '"nine-nine-three"', 'accepted: a whole number from 1 to 65535 (default 993)'],
    });
  });

  it('names an out-of-range value and an enum', async () => {
    const path = await file('imap:\n  host: h\n  login:\n    mode: admin\nsync:\n  maxDeleteShare: 2\n');
    const err = await rejects(load({ file: path }), { includes: ['2 problems', `${path}:4:5: imap.login.mode`, 'one of per-user, master', `${path}:6:3: sync.maxDeleteShare`, 'a number from 0 to 1'] });
    assert.equal(err.key, 'imap.login.mode');
  });

  it('names an unknown key and suggests the right spelling', async () => {
    const path = await file('spool:\n  sweep_seconds: 5\nimap:\n  host: h\n');
    await rejects(load({ file: path }), {
      key: 'spool.sweep_seconds',
      includes: [`${path}:2:3: spool.sweep_seconds: unknown setting`, 'did you mean sweepSeconds?', 'spool accepts: dir, voicemailConf'],
    });
    const section = await file('imap:\n  host: h\nphones:\n  x: 1\n');
    await rejects(load({ file: section }), { key: 'phones', includes: ['phones: unknown setting', 'sections are: spool, redis, imap'] });
  });

  it('requires imap.host, saying where to set it', async () => {
    await rejects(load({}), { key: 'imap.host', includes: ['imap.host is required', 'VMBRIDGE_IMAP_HOST', 'VMBRIDGE_CONFIG is not set', noDefault] });
    const path = await file('log:\n  level: info\n');
    await rejects(load({ file: path }), { key: 'imap.host', file: path, includes: ['imap.host is required', `in ${path}`, 'VMBRIDGE_IMAP_HOST'] });
    const emptyFile = await file('');
    await rejects(load({ file: emptyFile }), { key: 'imap.host', includes: ['imap.host is required'] });
  });

  it('never echoes a password value in an error', async () => {
    const path = await file('imap:\n  host: h\n  login:\n    mode: master\n    masterUser: vm\n    masterPassword: 918273645\n');
    const err = await rejects(load({ file: path }), { key: 'imap.login.masterPassword', includes: ['imap.login.masterPassword', 'value not shown'] });
    assert.equal(err.message.includes('918273645'), false);
  });
});

describe('loadSettings: environment overrides', () => {
  it('maps VMBRIDGE_<SECTION>_<KEY> (nested with __) and coerces to the schema type', async () => {
    const path = await file('imap:\n  host: file.example.com\n  port: 993\n');
    const { settings, warnings } = await load({
      file: path,
      env: {
        VMBRIDGE_IMAP_HOST: 'env.example.com',
        VMBRIDGE_IMAP_PORT: '143',
        VMBRIDGE_IMAP_SECURE: 'false',
        VMBRIDGE_IMAP_TLS__REJECT_UNAUTHORIZED: 'false',
        VMBRIDGE_IMAP_LOGIN__MODE: 'master',
        VMBRIDGE_IMAP_LOGIN__MASTER_USER: 'vmbridge',
        VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD: 'from-env',
        VMBRIDGE_IMAP_FOLDERS__PARENT: 'Voicemail',
        VMBRIDGE_SPOOL_SWEEP_SECONDS: '30',
        VMBRIDGE_SYNC_MAX_DELETE_SHARE: '0.25',
        VMBRIDGE_LOG_LEVEL: 'warn',
        VMBRIDGE_CONFIG: path,
        OTHER_VARIABLE: 'ignored',
      },
    });
    assert.equal(settings.imap.host, 'env.example.com');
    assert.equal(settings.imap.port, 143);
    assert.equal(settings.imap.secure, false);
    assert.equal(settings.imap.tls.rejectUnauthorized, false);
    assert.equal(settings.imap.login.mode, 'master');
    assert.equal(settings.imap.login.masterUser, 'vmbridge');
    assert.equal(settings.imap.login.masterPassword, 'from-env');
    assert.equal(settings.imap.folders.parent, 'Voicemail');
    assert.equal(settings.spool.sweepSeconds, 30);
    assert.equal(settings.sync.maxDeleteShare, 0.25);
    assert.equal(settings.log.level, 'warn');
    assert.ok(warnings.some((w) => w.startsWith('imap.tls.rejectUnauthorized is false')), warnings.join('\n'));
    // From the environment, the master password draws no "written in the file" warning.
    assert.equal(warnings.some((w) => w.includes('masterPassword is written')), false);
  });

  it('needs no file at all', async () => {
    const { settings, file: loaded } = await load({ env: { VMBRIDGE_IMAP_HOST: 'mail.example.com' } });
    assert.equal(loaded, undefined);
    assert.equal(settings.imap.host, 'mail.example.com');
  });

  it('accepts the usual boolean spellings', async () => {
    for (const [raw, want] of [['true', true], ['FALSE', false], ['yes', true], ['no', false], ['1', true], ['0', false], ['on', true], ['Off', false]] as const) {
      const { settings } = await load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_SPOOL_WATCH: raw } });
      assert.equal(settings.spool.watch, want, raw);
    }
  });

  it('an empty variable unsets the key, except where empty text is a value', async () => {
    const path = await file('imap:\n  host: h\n  port: 143\n  secure: false\n  folders:\n    parent: Voicemail\n');
    const { settings } = await load({ file: path, env: { VMBRIDGE_IMAP_PORT: '', VMBRIDGE_IMAP_FOLDERS__PARENT: '' } });
    assert.equal(settings.imap.port, 993);
    assert.equal(settings.imap.folders.parent, '');
  });

  it('rejects an unknown VMBRIDGE_ variable, naming it and the likely one', async () => {
    await rejects(load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_IMAP_LOGIN_MODE: 'master' } }), {
      key: 'VMBRIDGE_IMAP_LOGIN_MODE',
      includes: ['VMBRIDGE_IMAP_LOGIN_MODE', 'did you mean VMBRIDGE_IMAP_LOGIN__MODE?', 'nested keys joined by __'],
    });
    await rejects(load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_WHATEVER: '1' } }), { includes: ['unknown environment variable VMBRIDGE_WHATEVER'] });
  });

  it('names the variable when its value is wrong', async () => {
    const path = await file(MINIMAL);
    await rejects(load({ file: path, env: { VMBRIDGE_IMAP_PORT: 'abc' } }), {
      key: 'imap.port',
      includes: ['environment variable VMBRIDGE_IMAP_PORT: imap.port', '"abc"', 'a whole number from 1 to 65535'],
    });
    await rejects(load({ file: path, env: { VMBRIDGE_IMAP_REQUIRE_TLS: 'maybe' } }), {
      key: 'imap.requireTls',
      includes: ['VMBRIDGE_IMAP_REQUIRE_TLS', 'true or false'],
    });
  });

  it('gives every key a variable name by the documented rule', () => {
    assert.equal(envNameOf(['imap', 'tls', 'rejectUnauthorized']), 'VMBRIDGE_IMAP_TLS__REJECT_UNAUTHORIZED');
    const byKey = new Map(settingKeys().map((k) => [k.key, k.env]));
    assert.equal(byKey.get('imap.host'), 'VMBRIDGE_IMAP_HOST');
    assert.equal(byKey.get('imap.login.masterPasswordFile'), 'VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD_FILE');
    assert.equal(byKey.get('email.messageIdDomain'), 'VMBRIDGE_EMAIL_MESSAGE_ID_DOMAIN');
    assert.equal(byKey.get('spool.sweepSeconds'), 'VMBRIDGE_SPOOL_SWEEP_SECONDS');
    assert.equal(new Set(byKey.values()).size, byKey.size, 'variable names are unique');
  });
});

describe('loadSettings: secrets', () => {
  const master = (extra: string): string => `imap:\n  host: h\n  login:\n    mode: master\n    masterUser: vmbridge\n${extra}`;

  it('reads masterPasswordFile into masterPassword, without the trailing newline', async () => {
    const secret = join(dir, 'master-password');
    await writeFile(secret, 'p4ss word\n', { mode: 0o600 });
    await chmod(secret, 0o600);
    const path = await file(master(`    masterPasswordFile: ${secret}\n`));
    const { settings, warnings } = await load({ file: path });
    assert.equal(settings.imap.login.masterPassword, 'p4ss word');
    assert.equal(settings.imap.login.masterPasswordFile, secret);
    assert.deepEqual(warnings, []);
  });

  it('warns about a secret file every user can read', async () => {
    const secret = join(dir, 'master-password-644');
    await writeFile(secret, 'x');
    await chmod(secret, 0o644);
    const { warnings } = await load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_IMAP_LOGIN__MODE: 'master', VMBRIDGE_IMAP_LOGIN__MASTER_USER: 'vm', VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD_FILE: secret } });
    assert.ok(warnings.some((w) => w.includes(secret) && w.includes('chmod 600')), warnings.join('\n'));
  });

  it('names the key and path of a missing secret file', async () => {
    const secret = join(dir, 'no-such-secret');
    const path = await file(master(`    masterPasswordFile: ${secret}\n`));
    await rejects(load({ file: path }), { key: 'imap.login.masterPasswordFile', includes: ['imap.login.masterPasswordFile', secret, 'does not exist'] });
  });

  it('rejects an empty secret file', async () => {
    const secret = join(dir, 'empty-secret');
    await writeFile(secret, '\n', { mode: 0o600 });
    const path = await file(master(`    masterPasswordFile: ${secret}\n`));
    await rejects(load({ file: path }), { key: 'imap.login.masterPasswordFile', includes: ['is empty'] });
  });

  it('rejects masterPassword and masterPasswordFile together', async () => {
    const secret = join(dir, 'both-secret');
    await writeFile(secret, 'x', { mode: 0o600 });
    const path = await file(master(`    masterPasswordFile: ${secret}\n`));
    await rejects(load({ file: path, env: { VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD: 'y' } }), {
      key: 'imap.login.masterPasswordFile',
      includes: ['both set', 'VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD'],
    });
  });

  it('rejects master mode without a master user or password', async () => {
    const noPassword = await file(master(''));
    await rejects(load({ file: noPassword }), { key: 'imap.login.masterPassword', includes: ['imap.login.mode is master', 'masterPasswordFile'] });
    const noUser = await file('imap:\n  host: h\n  login:\n    mode: master\n    masterPassword: x\n');
    await rejects(load({ file: noUser }), { key: 'imap.login.masterUser' });
  });

  it('warns about an inline master password', async () => {
    const path = await file(master('    masterPassword: inline\n'));
    const { warnings } = await load({ file: path });
    assert.ok(warnings.some((w) => w.includes('masterPassword is written in') && w.includes('masterPasswordFile')), warnings.join('\n'));
  });

  it('names the key of a passwordsFile or caFile that cannot be read', async () => {
    const missing = join(dir, 'no-passwords.yaml');
    await rejects(load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_IMAP_LOGIN__PASSWORDS_FILE: missing } }), { key: 'imap.login.passwordsFile', includes: [missing] });
    await rejects(load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_IMAP_TLS__CA_FILE: missing } }), { key: 'imap.tls.caFile', includes: [missing] });
  });
});

describe('loadSettings: warnings', () => {
  it('warns about requireTls false only for a host that is not loopback', async () => {
    const env = { VMBRIDGE_IMAP_SECURE: 'false', VMBRIDGE_IMAP_PORT: '143', VMBRIDGE_IMAP_REQUIRE_TLS: 'false' };
    const remote = await load({ env: { ...env, VMBRIDGE_IMAP_HOST: 'mail.example.com' } });
    assert.ok(remote.warnings.some((w) => w.startsWith('imap.requireTls is false')), remote.warnings.join('\n'));
    for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]']) {
      const local = await load({ env: { ...env, VMBRIDGE_IMAP_HOST: host } });
      assert.deepEqual(local.warnings, [], host);
    }
  });

  it('warns about a port that does not fit secure, ignored master keys, an open HTTP listener and no delete limit', async () => {
    const { warnings } = await load({
      env: {
        VMBRIDGE_IMAP_HOST: 'h',
        VMBRIDGE_IMAP_PORT: '143',
        VMBRIDGE_IMAP_LOGIN__MASTER_USER: 'vm',
        VMBRIDGE_HTTP_HOST: '0.0.0.0',
        VMBRIDGE_HTTP_PORT: '8080',
        VMBRIDGE_SYNC_MAX_DELETE_SHARE: '1',
      },
    });
    for (const start of ['imap.secure is true', 'imap.login.masterUser/masterPassword are set', 'http.host is 0.0.0.0', 'sync.maxDeleteShare is 1']) {
      assert.ok(warnings.some((w) => w.startsWith(start)), `${start}: ${warnings.join('\n')}`);
    }
  });
});

describe('loadSettings: http.push', () => {
  const base = { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_HTTP_PORT: '8080', VMBRIDGE_HTTP_PUSH__ENABLED: 'true' };

  it('needs the HTTP listener', async () => {
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_PORT: '0' } }), { key: 'http.port', includes: ['http.push.enabled', 'VMBRIDGE_HTTP_PORT'] });
  });

  it('reads tokenFile into token; refuses both at once and a token with a blank', async () => {
    const tokenFile = join(dir, 'push-token');
    await writeFile(tokenFile, 'tok-abc\n', { mode: 0o600 });
    await chmod(tokenFile, 0o600);
    const { settings, warnings } = await load({ env: { ...base, VMBRIDGE_HTTP_PUSH__TOKEN_FILE: tokenFile } });
    assert.equal(settings.http.push.token, 'tok-abc');
    assert.deepEqual(warnings, []);
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_PUSH__TOKEN_FILE: tokenFile, VMBRIDGE_HTTP_PUSH__TOKEN: 'x' } }), { key: 'http.push.tokenFile', includes: ['both set'] });
    const err = await rejects(load({ env: { ...base, VMBRIDGE_HTTP_PUSH__TOKEN: 'two words' } }), { key: 'http.push.token', includes: ['whitespace'] });
    assert.ok(!err.message.includes('two words'), 'the token is not echoed');
  });

  it('refuses no token off loopback, allows it on loopback', async () => {
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_HOST: '0.0.0.0' } }), { key: 'http.push.tokenFile', includes: ['not a loopback address', 'VMBRIDGE_HTTP_PUSH__TOKEN_FILE'] });
    const local = await load({ env: base });
    assert.equal(local.settings.http.push.enabled, true);
    assert.equal(local.settings.http.push.token, undefined);
  });

  it('warns about a token written in the settings file, and about a token with push off', async () => {
    const inline = await load({ file: await file('imap:\n  host: h\nhttp:\n  port: 8080\n  push:\n    enabled: true\n    token: t0k\n') });
    assert.ok(inline.warnings.some((w) => w.startsWith('http.push.token is written in')), inline.warnings.join('\n'));
    const off = await load({ env: { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_HTTP_PUSH__TOKEN: 't0k' } });
    assert.ok(off.warnings.some((w) => w.includes('http.push.enabled is false')), off.warnings.join('\n'));
  });
});

describe('config/vmbridge.example.yaml', () => {
  it('loads and validates with no warnings', async () => {
    const { settings, warnings } = await load({ file: EXAMPLE, env: { VMBRIDGE_SPOOL_DIR: dir } });
    assert.deepEqual(warnings, []);
    assert.equal(settings.imap.login.mode, 'per-user');
    assert.equal(settings.spool.dir, dir);
  });

  it('documents every key of the schema', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    for (const k of settingKeys()) {
      const name = k.path[k.path.length - 1]!;
      assert.match(text, new RegExp(`^\\s*#?\\s*${name}:`, 'm'), `${k.key} is not in the example`);
    }
  });

  it('works as example 2, with a master user', async () => {
    const secret = join(dir, 'example-master');
    await writeFile(secret, 'master-secret\n', { mode: 0o600 });
    const { settings, warnings } = await load({
      file: EXAMPLE,
      env: { VMBRIDGE_IMAP_LOGIN__MODE: 'master', VMBRIDGE_IMAP_LOGIN__MASTER_USER: 'vmbridge', VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD_FILE: secret },
    });
    assert.deepEqual(warnings, []);
    assert.equal(settings.imap.login.masterPassword, 'master-secret');
    assert.equal(settings.imap.login.masterSeparator, '*');
    assert.equal(settings.imap.login.masterStyle, 'separator');
  });

  it('works as example 3, with a Cyrus admin (masterStyle authzid)', async () => {
    const secret = join(dir, 'example-admin');
    await writeFile(secret, 'admin-secret\n', { mode: 0o600 });
    const { settings, warnings } = await load({
      file: EXAMPLE,
      env: { VMBRIDGE_IMAP_LOGIN__MODE: 'master', VMBRIDGE_IMAP_LOGIN__MASTER_STYLE: 'authzid', VMBRIDGE_IMAP_LOGIN__MASTER_USER: 'vmbridge', VMBRIDGE_IMAP_LOGIN__MASTER_PASSWORD_FILE: secret },
    });
    assert.deepEqual(warnings, []);
    assert.equal(settings.imap.login.masterStyle, 'authzid');
    assert.equal(settings.imap.login.masterPassword, 'admin-secret');
  });
});

describe('loadSettings: http.status', () => {
  const base = { VMBRIDGE_IMAP_HOST: 'h', VMBRIDGE_HTTP_PORT: '8080', VMBRIDGE_HTTP_STATUS__ENABLED: 'true' };

  it('is off by default, and refuses to be on without a password', async () => {
    const { settings } = await load({ env: { VMBRIDGE_IMAP_HOST: 'h' } });
    assert.equal(settings.http.status.enabled, false);
    assert.equal(settings.http.status.readOnly, true);
    await rejects(load({ env: base }), { key: 'http.status.passwordFile', includes: ['no password', 'VMBRIDGE_HTTP_STATUS__PASSWORD_FILE'] });
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_PORT: '0', VMBRIDGE_HTTP_STATUS__PASSWORD: 'x'.repeat(16) } }), { key: 'http.port', includes: ['http.status.enabled'] });
  });

  it('reads passwordFile; refuses both at once, a line break, and a colon in the user name; warns about a short or written-in password', async () => {
    const passwordFile = join(dir, 'status-password');
    await writeFile(passwordFile, 'a-long-page-password\n', { mode: 0o600 });
    await chmod(passwordFile, 0o600);
    const { settings, warnings } = await load({ env: { ...base, VMBRIDGE_HTTP_STATUS__PASSWORD_FILE: passwordFile } });
    assert.equal(settings.http.status.password, 'a-long-page-password');
    assert.equal(settings.http.status.username, 'admin');
    assert.deepEqual(warnings, []);
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_STATUS__PASSWORD_FILE: passwordFile, VMBRIDGE_HTTP_STATUS__PASSWORD: 'x' } }), { key: 'http.status.passwordFile', includes: ['both set'] });
    const broken = await rejects(load({ env: { ...base, VMBRIDGE_HTTP_STATUS__PASSWORD: 'line\nbreak-password' } }), { key: 'http.status.password', includes: ['line break'] });
    assert.ok(!broken.message.includes('break-password'), 'the password is not echoed');
    await rejects(load({ env: { ...base, VMBRIDGE_HTTP_STATUS__PASSWORD: 'x'.repeat(16), VMBRIDGE_HTTP_STATUS__USERNAME: 'a:b' } }), { key: 'http.status.username' });
    const short = await load({ env: { ...base, VMBRIDGE_HTTP_STATUS__PASSWORD: 'short' } });
    assert.ok(short.warnings.some((w) => w.startsWith('http.status.password is shorter than 12')), short.warnings.join('\n'));
    const inline = await load({ file: await file('imap:\n  host: h\nhttp:\n  port: 8080\n  status:\n    enabled: true\n    password: a-long-page-password\n') });
    assert.ok(inline.warnings.some((w) => w.startsWith('http.status.password is written in')), inline.warnings.join('\n'));
  });
});
