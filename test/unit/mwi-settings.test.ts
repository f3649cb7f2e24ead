/** The `mwi` settings: target kinds, unique safe names, secrets from files, SIP URI templates. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { ConfigError } from '../../src/errors.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-mwi-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(mwi: string, env: Record<string, string> = {}) {
  const path = join(dir, `s-${++n}.yaml`);
  await writeFile(path, `imap:\n  host: mail.example.com\nmwi:\n${mwi}`);
  return loadSettings({ file: path, env, defaultFile: join(dir, 'absent.yaml') });
}

async function secret(text: string): Promise<string> {
  const path = join(dir, `secret-${++n}`);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

async function refused(p: Promise<unknown>, includes: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(err.message.includes(includes), err.message);
    return true;
  });
}

describe('mwi settings', () => {
  it('defaults to no targets', async () => {
    const { settings } = await load('  concurrency: 2\n');
    assert.deepEqual(settings.mwi, { targets: [], retrySeconds: 1, retryMaxSeconds: 30, concurrency: 2 });
  });

  it('reads every kind, with secrets from files', async () => {
    const amiSecret = await secret('ami-s3cret\n');
    const sipPassword = await secret('sip-pass\n');
    const { settings, warnings } = await load(`  targets:
    - { name: owner, kind: ami-refresh, host: 127.0.0.1, username: vmbridge, secretFile: ${amiSecret} }
    - { name: edge-1, kind: ami-mwiupdate, host: edge.example.com, port: 5039, secure: true, username: vmbridge, secretFile: ${amiSecret} }
    - { name: edge_2, kind: ami-mailboxstate, host: "::1", username: vmbridge, secretFile: ${amiSecret}, entityId: "02:00:00:00:00:01" }
    - { name: proxy, kind: sip-notify, host: sip.example.com, toUri: "sip:{mailbox}@sip.example.com", fromUri: "sip:vmbridge@sip.example.com", passwordFile: ${sipPassword} }
`);
    assert.deepEqual(warnings, []);
    const [owner, edge1, edge2, proxy] = settings.mwi.targets;
    assert.equal(owner?.kind === 'ami-refresh' && owner.secret, 'ami-s3cret');
    assert.equal(owner?.kind === 'ami-refresh' && owner.port, 5038);
    assert.equal(edge1?.kind === 'ami-mwiupdate' && edge1.port, 5039);
    assert.equal(edge2?.kind === 'ami-mailboxstate' && edge2.entityId, '02:00:00:00:00:01');
    assert.equal(proxy?.kind === 'sip-notify' && proxy.password, 'sip-pass');
    assert.equal(proxy?.kind === 'sip-notify' && proxy.port, 5060);
  });

  it('takes the list as JSON from the environment', async () => {
    const amiSecret = await secret('x\n');
    const { settings } = await load('  concurrency: 1\n', {
      VMBRIDGE_MWI_TARGETS: JSON.stringify([{ name: 'owner', kind: 'ami-refresh', host: '127.0.0.1', username: 'u', secretFile: amiSecret }]),
    });
    assert.equal(settings.mwi.targets[0]?.name, 'owner');
  });

  it('refuses duplicate, unsafe and missing names', async () => {
    const s = await secret('x\n');
    const t = (name: string): string => `    - { name: ${name}, kind: ami-refresh, host: h, username: u, secretFile: ${s} }\n`;
    await refused(load(`  targets:\n${t('a')}${t('a')}`), 'target names must be unique');
    await refused(load(`  targets:\n${t('"a\\r\\nAction: Logoff"')}`), 'mwi.targets.0.name');
    await refused(load(`  targets:\n${t('"a,b"')}`), 'mwi.targets.0.name');
    await refused(load(`  targets:\n${t('"a:b"')}`), 'mwi.targets.0.name');
    await refused(load(`  targets:\n    - { kind: ami-refresh, host: h, username: u, secretFile: ${s} }\n`), 'mwi.targets.0.name');
  });

  it('refuses an unknown kind (there is no ami-devicestate), and fields of another kind', async () => {
    const s = await secret('x\n');
    await refused(load(`  targets:\n    - { name: a, kind: ami-devicestate, host: h, username: u, secretFile: ${s} }\n`), 'mwi.targets.0.kind');
    await refused(load(`  targets:\n    - { name: a, kind: ami-refresh, host: h, username: u, secretFile: ${s}, entityId: "02:00:00:00:00:01" }\n`), 'entityId');
    await refused(load(`  targets:\n    - { name: a, kind: ami-mailboxstate, host: h, username: u, secretFile: ${s}, entityId: "nope" }\n`), 'mwi.targets.0.entityId');
  });

  it('needs exactly one AMI secret, and never a line break in it', async () => {
    const s = await secret('x\n');
    await refused(load('  targets:\n    - { name: a, kind: ami-refresh, host: h, username: u }\n'), 'needs secretFile or secret');
    await refused(load(`  targets:\n    - { name: a, kind: ami-refresh, host: h, username: u, secret: x, secretFile: ${s} }\n`), 'both set');
    const broken = await secret('one\ntwo\n');
    await refused(load(`  targets:\n    - { name: a, kind: ami-refresh, host: h, username: u, secretFile: ${broken} }\n`), 'line break');
    await refused(load('  targets:\n    - { name: a, kind: ami-refresh, host: h, username: "u\\r\\nAction: Logoff", secret: x }\n'), 'mwi.targets.0.username');
    const { warnings } = await load('  targets:\n    - { name: a, kind: ami-refresh, host: h, username: u, secret: x }\n');
    assert.ok(warnings.some((w) => w.includes('prefer mwi.targets.0.secretFile')), warnings.join('\n'));
  });

  it('checks the SIP URI templates', async () => {
    const sip = (to: string, from = 'sip:vmbridge@pbx.example.com'): string =>
      `  targets:\n    - { name: p, kind: sip-notify, host: pbx.example.com, toUri: ${JSON.stringify(to)}, fromUri: ${JSON.stringify(from)} }\n`;
    await refused(load(sip('sip:1000@pbx.example.com')), 'must contain {mailbox}');
    await refused(load(sip('sip:{mailbox}@pbx.example.com;transport=tcp')), 'mwi.targets.0.toUri');
    await refused(load(sip('"Bob" <sip:{mailbox}@pbx.example.com>')), 'mwi.targets.0.toUri');
    await refused(load(sip('sip:{mailbox}@pbx.example.com', 'sip:vm@pbx\r\nX: y')), 'mwi.targets.0.fromUri');
    const { settings } = await load(sip('sip:{mailbox}-{context}@pbx.example.com:5070'));
    assert.equal(settings.mwi.targets[0]?.kind, 'sip-notify');
  });

  it('takes the SIP transport: udp by default, tcp, tls with its own default port and tls block', async () => {
    const sip = (more: string): string =>
      `  targets:\n    - { name: p, kind: sip-notify, host: pbx.example.com, toUri: "sip:{mailbox}@pbx.example.com", fromUri: "sip:vmbridge@pbx.example.com"${more} }\n`;
    const udp = (await load(sip(''))).settings.mwi.targets[0];
    assert.ok(udp?.kind === 'sip-notify');
    assert.equal(udp.transport, 'udp');
    assert.equal(udp.port, 5060);
    assert.deepEqual(udp.tls, { rejectUnauthorized: true });
    const tcp = (await load(sip(', transport: tcp'))).settings.mwi.targets[0];
    assert.ok(tcp?.kind === 'sip-notify');
    assert.equal(tcp.transport, 'tcp');
    assert.equal(tcp.port, 5060);
    const ca = await secret('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const { settings, warnings } = await load(sip(`, transport: tls, tls: { caFile: ${ca}, servername: sip.example.com }`));
    const tls = settings.mwi.targets[0];
    assert.ok(tls?.kind === 'sip-notify');
    assert.equal(tls.transport, 'tls');
    assert.equal(tls.port, 5061, 'TLS defaults to 5061');
    assert.deepEqual(tls.tls, { rejectUnauthorized: true, caFile: ca, servername: 'sip.example.com' });
    assert.deepEqual(warnings, []);
    const given = (await load(sip(', transport: tls, port: 5081'))).settings.mwi.targets[0];
    assert.equal(given?.kind === 'sip-notify' && given.port, 5081);
    await refused(load(sip(', transport: sctp')), 'mwi.targets.0.transport');
    await refused(load(sip(', transport: tls, tls: { caFile: /nonexistent/ca.pem }')), 'mwi.targets.0.tls.caFile');
    await refused(load(sip(', tls: { verify: false }')), 'verify');
  });

  it('refuses a sips: toUri unless the transport is tls, naming both settings', async () => {
    const sips = (transport: string): string =>
      `  targets:\n    - { name: p, kind: sip-notify, host: pbx.example.com, toUri: "sips:{mailbox}@pbx.example.com", fromUri: "sip:vmbridge@pbx.example.com"${transport} }\n`;
    for (const transport of ['', ', transport: udp', ', transport: tcp']) {
      await assert.rejects(load(sips(transport)), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /mwi\.targets\.0\.toUri \(target p\) is a sips: URI, which must travel over TLS .* but mwi\.targets\.0\.transport is (udp|tcp); set mwi\.targets\.0\.transport to tls/);
        assert.equal(err.key, 'mwi.targets.0.transport');
        return true;
      });
    }
    const { settings } = await load(sips(', transport: tls'));
    assert.equal(settings.mwi.targets[0]?.kind === 'sip-notify' && settings.mwi.targets[0].transport, 'tls');
  });

  it('warns about a TLS target on 5060, a plain one on 5061, and verification turned off', async () => {
    const sip = (more: string): string =>
      `  targets:\n    - { name: p, kind: sip-notify, host: pbx.example.com, toUri: "sip:{mailbox}@pbx.example.com", fromUri: "sip:vmbridge@pbx.example.com"${more} }\n`;
    const w1 = (await load(sip(', transport: tls, port: 5060'))).warnings;
    assert.ok(w1.some((w) => w.includes('mwi.targets.0.transport (target p) is tls but mwi.targets.0.port is 5060')), w1.join('\n'));
    const w2 = (await load(sip(', transport: tcp, port: 5061'))).warnings;
    assert.ok(w2.some((w) => w.includes('mwi.targets.0.port (target p) is 5061')), w2.join('\n'));
    const w3 = (await load(sip(', transport: tls, tls: { rejectUnauthorized: false }'))).warnings;
    assert.ok(w3.some((w) => w.startsWith('mwi.targets.0.tls.rejectUnauthorized is false')), w3.join('\n'));
  });
});
