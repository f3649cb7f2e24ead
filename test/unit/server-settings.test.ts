/** The `servers` settings: more voicemail servers, each seen as it would be alone. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { voicemailServers } from '../../src/config/servers.js';
import { ConfigError } from '../../src/errors.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-server-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(yaml: string, env: Record<string, string> = {}) {
  const path = join(dir, `s-${++n}.yaml`);
  await writeFile(path, `imap:\n  host: mail.example.com\nspool:\n  dir: /srv/a\n  voicemailConf: /etc/a/voicemail.conf\n${yaml}`);
  return loadSettings({ file: path, env, defaultFile: join(dir, 'absent.yaml') });
}

async function refused(p: Promise<unknown>, includes: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(err.message.includes(includes), err.message);
    return true;
  });
}

const serverB = 'servers:\n  - name: pbx-b\n    spool:\n      dir: /srv/b\n      voicemailConf: /etc/b/voicemail.conf\n';
const ami = (name: string, extra = '') => `  - name: ${name}\n    kind: ami-refresh\n    host: 127.0.0.1\n    username: u\n    secret: s\n${extra}`;

describe('servers settings', () => {
  it('is one server, the main one, unless servers says more', async () => {
    const { settings } = await load('');
    const servers = voicemailServers(settings);
    assert.deepEqual(servers.map((s) => [s.name, s.label, s.settings.spool.dir]), [[undefined, 'main', '/srv/a']]);
  });

  it('gives each server its own spool, asterisk and targets, and the installation’s sweep', async () => {
    const secretFile = join(dir, 'b-secret');
    await writeFile(secretFile, 'sesame\n', { mode: 0o600 });
    const { settings } = await load(
      `spool:\n  dir: /srv/a\n  voicemailConf: /etc/a/voicemail.conf\n  sweepSeconds: 120\n`.replace(/^spool:[\s\S]*$/, '') +
        `${serverB}    asterisk:\n      ami:\n        host: 127.0.0.2\n        username: vmb\n        secretFile: ${secretFile}\n` +
        `mwi:\n  targets:\n${ami('owner-a', '    servers: [main]\n')}${ami('owner-b', '    servers: [pbx-b]\n')}  - name: phones\n    kind: ami-mwiupdate\n    host: 127.0.0.3\n    username: u\n    secret: s\n`,
    );
    const [a, b] = voicemailServers(settings);
    assert.equal(b?.name, 'pbx-b');
    assert.equal(b?.settings.spool.dir, '/srv/b');
    assert.equal(b?.settings.spool.watch, true);
    assert.equal(b?.settings.spool.sweepSeconds, settings.spool.sweepSeconds);
    assert.equal(b?.settings.asterisk.ami?.secret, 'sesame');
    assert.equal(a?.settings.asterisk.ami, undefined);
    assert.deepEqual(a?.settings.mwi.targets.map((t) => t.name), ['owner-a', 'phones']);
    assert.deepEqual(b?.settings.mwi.targets.map((t) => t.name), ['owner-b', 'phones']);
  });

  it('takes servers as JSON from the environment', async () => {
    const { settings } = await load('', { VMBRIDGE_SERVERS: JSON.stringify([{ name: 'pbx-c', spool: { dir: '/srv/c', voicemailConf: '/etc/c/voicemail.conf' } }]) });
    assert.deepEqual(voicemailServers(settings).map((s) => s.label), ['main', 'pbx-c']);
  });

  it('refuses what would make two servers one, or a target without its server', async () => {
    await refused(load(`${serverB}  - name: pbx-b\n    spool:\n      dir: /srv/c\n      voicemailConf: /etc/c/voicemail.conf\n`), 'used twice');
    await refused(load('servers:\n  - name: pbx-b\n    spool:\n      dir: /srv/a/\n      voicemailConf: /etc/b/voicemail.conf\n'), 'same spool as spool.dir');
    await refused(load('servers:\n  - name: pbx-b\n    spool:\n      dir: /srv/b\n      voicemailConf: /etc/a/voicemail.conf\n'), 'same file as spool.voicemailConf');
    await refused(load('servers:\n  - name: main\n    spool:\n      dir: /srv/b\n      voicemailConf: /etc/b/voicemail.conf\n'), 'main names the top-level');
    await refused(load('servers:\n  - name: a/b\n    spool:\n      dir: /srv/b\n      voicemailConf: /etc/b/voicemail.conf\n'), 'servers.0.name');
    await refused(load('servers:\n  - name: pbx-b\n    spool:\n      dir: /srv/b\n'), 'servers.0.spool.voicemailConf');
    await refused(load(`${serverB}mwi:\n  targets:\n${ami('owner')}`), 'must name the server it is');
    await refused(load(`mwi:\n  targets:\n${ami('owner', '    servers: [pbx-x]\n')}`), 'names the server "pbx-x"');
    await refused(load(`${serverB}    asterisk:\n      ami:\n        host: 127.0.0.2\n        username: vmb\n`), 'servers.0.asterisk.ami.host is set but neither');
  });

  it('leaves a single-server ami-refresh target as it was (every mailbox)', async () => {
    const { settings } = await load(`mwi:\n  targets:\n${ami('owner')}`);
    assert.deepEqual(voicemailServers(settings)[0]?.settings.mwi.targets.map((t) => t.name), ['owner']);
  });
});

describe('vmbridge doctor with several servers', () => {
  it('runs each server’s own checks once per server, under its name', async () => {
    const { runDoctor } = await import('../../src/cli/doctor.js');
    const { spoolCheck, voicemailConfCheck } = await import('../../src/cli/doctor/local.js');
    const { redisCheck } = await import('../../src/cli/doctor/redis.js');
    const { mkdir } = await import('node:fs/promises');
    const a = join(dir, 'doctor-a');
    const b = join(dir, 'doctor-b');
    await mkdir(join(a, 'voicemail', 'default', '1000'), { recursive: true });
    await mkdir(join(b, 'voicemail', 'default', '1000'), { recursive: true });
    await mkdir(join(b, 'voicemail', 'default', '1001'), { recursive: true });
    await writeFile(join(dir, 'doctor-a.conf'), '[default]\n1000 => 1,A,a@example.invalid\n');
    await writeFile(join(dir, 'doctor-b.conf'), '[default]\n1000 => 1,B,b@example.invalid\n');
    const path = join(dir, `s-${++n}.yaml`);
    await writeFile(path, `imap:\n  host: mail.example.com\nredis:\n  url: redis://127.0.0.1:1\nspool:\n  dir: ${a}\n  voicemailConf: ${join(dir, 'doctor-a.conf')}\nservers:\n  - name: pbx-b\n    spool:\n      dir: ${b}\n      voicemailConf: ${join(dir, 'doctor-b.conf')}\n`);
    const { settings } = await loadSettings({ file: path, env: {}, defaultFile: join(dir, 'absent.yaml') });
    const report = await runDoctor(settings, { checks: [spoolCheck, voicemailConfCheck, redisCheck] });
    const sections = [...new Set(report.results.map((r) => r.section))];
    assert.deepEqual(sections.filter((s) => s.startsWith('spool')), ['spool (server main)', 'spool (server pbx-b)']);
    assert.equal(sections.filter((s) => s.startsWith('voicemail.conf')).length, 2);
    assert.equal(sections.filter((s) => s.startsWith('redis')).length, 1, 'installation-wide checks run once');
    const spoolB = report.results.find((r) => r.section === 'spool (server pbx-b)');
    assert.equal(spoolB?.data?.['mailboxes'], 2, JSON.stringify(spoolB));
  });
});
