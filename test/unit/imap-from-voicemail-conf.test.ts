/**
 * A site moving from Asterisk's IMAP storage keeps its voicemail.conf: imapserver, imapport,
 * imapflags, imapfolder, imapparentfolder, authuser and authpassword of [general] become vmbridge's
 * IMAP settings where its own settings leave them out, and a mailbox whose own options put it on
 * another server is named and left out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyImapFills, imapFromGeneral } from '../../src/config/imap-from-voicemail-conf.js';
import { loadSettings } from '../../src/config/load-settings.js';
import { readVoicemailConf } from '../../src/config/voicemail-conf.js';
import { ConfigError } from '../../src/errors.js';
import { buildDirectory } from '../../src/sync/directory.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-imapconf-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A settings file naming a voicemail.conf with this text; `yaml` adds to the settings. */
async function site(voicemailConf: string, yaml = ''): Promise<string> {
  const conf = join(dir, `voicemail-${++n}.conf`);
  await writeFile(conf, voicemailConf);
  const settings = join(dir, `settings-${n}.yaml`);
  await writeFile(settings, `spool:\n  voicemailConf: ${conf}\n${yaml}`);
  return settings;
}
const load = (file: string) => loadSettings({ file, env: {}, defaultFile: join(dir, 'absent.yaml') });

describe('IMAP_STORAGE options of [general] as settings', () => {
  it('maps each c-client flag, and takes Asterisk\'s port 143 when imapport is not set', () => {
    const value = (general: Record<string, string>, key: string) => imapFromGeneral(general).fills.filter((f) => f.path.join('.') === key).map((f) => f.value);
    assert.deepEqual(value({ imapserver: 'mail' }, 'imap.port'), [143]);
    assert.deepEqual(value({ imapserver: 'mail' }, 'imap.secure'), [false], 'no flags: plain, with STARTTLS when offered');
    assert.deepEqual(value({ imapserver: 'mail', imapport: '993', imapflags: 'ssl' }, 'imap.port'), [993]);
    assert.deepEqual(value({ imapflags: 'ssl' }, 'imap.secure'), [true]);
    assert.deepEqual(value({ imapflags: '/tls' }, 'imap.requireTls'), [true]);
    assert.deepEqual(value({ imapflags: 'notls' }, 'imap.requireTls'), [false]);
    assert.deepEqual(value({ imapflags: 'ssl/novalidate-cert' }, 'imap.tls.rejectUnauthorized'), [false]);
    assert.deepEqual(value({ imapflags: 'ssl/validate-cert/imap4rev1' }, 'imap.tls.rejectUnauthorized'), []);
    const odd = imapFromGeneral({ imapflags: 'ssl/anonymous', imapport: 'imaps' });
    assert.equal(odd.problems.length, 2);
    assert.match(odd.problems.join('\n'), /\/anonymous is not a flag vmbridge knows/);
    assert.match(odd.problems.join('\n'), /imapport=imaps is not a port number/);
    assert.match(imapFromGeneral({ authpassword: 'x' }).problems[0]!, /authpassword= is set without authuser=/);
  });

  it('fills only what the settings leave out; the server is taken whole or not at all', () => {
    const { fills } = imapFromGeneral({ imapserver: 'old.example', imapport: '993', imapflags: 'ssl', imapfolder: 'Voicemail', authuser: 'admin', authpassword: 'pw' });
    const own: Record<string, unknown> = { imap: { host: 'new.example', login: { mode: 'per-user' } } };
    const applied = applyImapFills(own, fills);
    assert.deepEqual(own, { imap: { host: 'new.example', login: { mode: 'per-user' }, folders: { inbox: 'Voicemail' } } });
    assert.deepEqual([...applied.filled.keys()], ['imap.folders.inbox']);
    const wrongType: Record<string, unknown> = { imap: 'not a section' };
    applyImapFills(wrongType, fills);
    assert.deepEqual(wrongType, { imap: 'not a section' }, 'left for validation to name');
  });

  it('loads a site whose server, flags, folders and master login are only in voicemail.conf', async () => {
    const file = await site(`[general]
imapserver=imap.example.org
imapport=143
imapflags=tls/novalidate-cert
imapfolder=Voicemail
imapparentfolder=Voicemail
authuser=vmadmin
authpassword=s3cret-master
[default]
4000 => 1234,Ann,ann@example.org,,imapuser=ann
4001 => 1234,Bob,bob@example.org,,imapuser=bob|imapserver=other.example.org
4002 => 1234,Cy,cy@example.org,,imapuser=cy|imapserver=IMAP.example.org|imapport=143|imapflags=novalidate-cert/tls
4003 => 1234,Di,di@example.org,,imapuser=di|imapfolder=INBOX
4004 => 1234,Ed,ed@example.org,,imapuser=ed|imapflags=ssl
`);
    const loaded = await load(file);
    const { imap } = loaded.settings;
    assert.equal(imap.host, 'imap.example.org');
    assert.equal(imap.port, 143);
    assert.equal(imap.secure, false);
    assert.equal(imap.requireTls, true);
    assert.equal(imap.tls.rejectUnauthorized, false);
    assert.equal(imap.folders.inbox, 'Voicemail');
    assert.equal(imap.folders.parent, 'Voicemail');
    assert.equal(imap.login.mode, 'master');
    assert.equal(imap.login.masterUser, 'vmadmin');
    assert.equal(imap.login.masterStyle, 'authzid');
    assert.equal(imap.login.masterPassword, 's3cret-master');
    assert.ok(loaded.fromVoicemailConf.some((l) => l.startsWith('imap.host = "imap.example.org" from voicemail.conf [general] imapserver=imap.example.org')));
    assert.ok(loaded.fromVoicemailConf.some((l) => l.startsWith('imap.login.masterPassword = (hidden)')));
    assert.ok(!loaded.fromVoicemailConf.join('\n').includes('s3cret-master'), 'the master password is never shown');

    const conf = await readVoicemailConf(loaded.settings.spool.voicemailConf);
    const directory = buildDirectory(conf, loaded.settings, new Map());
    assert.deepEqual([...directory.boxes.keys()].sort(), ['4000@default', '4002@default']);
    const other = directory.problems.find((p) => p.mailbox === '4001@default');
    assert.match(other!.problem, /imapserver=other\.example\.org puts this mailbox on another IMAP server than imap\.host \(imap\.example\.org\)/);
    assert.equal(other!.line, 11);
    assert.match(directory.problems.find((p) => p.mailbox === '4003@default')!.problem, /imapfolder=INBOX differs from imap\.folders\.inbox \(Voicemail\)/);
    assert.match(directory.problems.find((p) => p.mailbox === '4004@default')!.problem, /imapflags=ssl means imap\.secure: true, and the installation uses false/);
  });

  it('vmbridge\'s own settings win', async () => {
    const own = await load(await site('[general]\nimapserver=old.example\nimapflags=notls\nimapfolder=VM\n', 'imap:\n  host: new.example\n  folders:\n    inbox: INBOX\n'));
    assert.equal(own.settings.imap.host, 'new.example');
    assert.equal(own.settings.imap.port, 993, 'not Asterisk\'s 143: the server is another one');
    assert.equal(own.settings.imap.requireTls, true);
    assert.equal(own.settings.imap.folders.inbox, 'INBOX');
    assert.deepEqual(own.fromVoicemailConf, []);

    // A value taken from voicemail.conf that the settings refuse is named by its option.
    const long = 'V'.repeat(201);
    await assert.rejects(load(await site(`[general]\nimapserver=mail\nimapfolder=${long}\n`)), (err: unknown) => err instanceof ConfigError && err.key === 'imap.folders.inbox' && err.message.includes(`voicemail.conf [general] imapfolder=${long}`));

    // A master password kept in a file (better than voicemail.conf) is not overridden by authpassword=.
    const secret = join(dir, 'master.pw');
    await writeFile(secret, 'from-file\n', { mode: 0o600 });
    const kept = await load(await site('[general]\nimapserver=mail\nauthuser=vmadmin\nauthpassword=in-conf\n', `imap:\n  login:\n    masterPasswordFile: ${secret}\n`));
    assert.equal(kept.settings.imap.login.mode, 'master');
    assert.equal(kept.settings.imap.login.masterPassword, 'from-file');
  });

  it('without imapserver anywhere, imap.host is required and the message says where it may come from', async () => {
    await assert.rejects(load(await site('[general]\nimapfolder=VM\n')), (err: unknown) => err instanceof ConfigError && /imap\.host is required.*imapserver= in voicemail\.conf's \[general\]/.test(err.message));
  });
});
