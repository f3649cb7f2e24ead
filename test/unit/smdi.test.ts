/** SMDI: the lamp bytes, the switch's answers, the stty read-back, and smdi.conf as res_smdi reads it. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { ConfigError } from '../../src/errors.js';
import { sameAsShown } from '../../src/mwi/counts.js';
import { lampMessage, lampOn, missingLineSettings, parseReply, SmdiReplyReader, SmdiValueError, sttyArgs, DEFAULT_LINE } from '../../src/mwi/smdi.js';
import { planSmdiTarget, readSmdiConf } from '../../src/mwi/smdi-conf.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-smdi-unit-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function conf(text: string): Promise<string> {
  const path = join(dir, `smdi-${++n}.conf`);
  await writeFile(path, text);
  return path;
}

describe('lamp messages', () => {
  it('are OP:MWI / RMV:MWI, one space, the station, ! and EOT, nothing else', () => {
    assert.deepEqual(lampMessage(true, '5551234'), Buffer.from('OP:MWI 5551234!\x04', 'latin1'));
    assert.deepEqual(lampMessage(false, '5551234'), Buffer.from('RMV:MWI 5551234!\x04', 'latin1'));
  });
  it('put msdstrip zeros before the station', () => {
    assert.equal(lampMessage(true, '1234', 3).toString('latin1'), 'OP:MWI 0001234!\x04');
  });
  it('refuse anything but 1 to 10 digits, and msdstrip outside 0..9', () => {
    for (const bad of ['', '12a4', '1234\r\n', '12345678901', ' 1234', '1234!']) {
      assert.throws(() => lampMessage(true, bad), SmdiValueError, bad);
    }
    assert.throws(() => lampMessage(true, '1234', 10), SmdiValueError);
    assert.throws(() => lampMessage(true, '1234', -1), SmdiValueError);
  });
  it('light for any new (INBOX + Urgent) message, not for old ones', () => {
    assert.equal(lampOn({ new: 1, old: 0, urgent: 0 }), true);
    assert.equal(lampOn({ new: 0, old: 5, urgent: 0 }), false);
  });
  it('count as unchanged while the lamp would not change', () => {
    assert.equal(sameAsShown('smdi', { new: 1, old: 0, urgent: 0 }, { new: 3, old: 2, urgent: 1 }), true);
    assert.equal(sameAsShown('smdi', { new: 1, old: 0, urgent: 0 }, { new: 0, old: 1, urgent: 0 }), false);
    assert.equal(sameAsShown('smdi', undefined, { new: 0, old: 0, urgent: 0 }), false);
  });
});

describe('answers from the switch', () => {
  it('reads MWI failures across chunks, dropping parity bits and msdstrip digits', () => {
    const reader = new SmdiReplyReader(2);
    assert.deepEqual(reader.push(Buffer.from('\r\nMWI005551', 'latin1')), []);
    const chunk = Buffer.from('234 INV\r\n\x19\r\nMWI005550000 BLK\r\n\x19', 'latin1');
    chunk[0] = (chunk[0] ?? 0) | 0x80; // a parity bit on the first byte
    assert.deepEqual(reader.push(chunk), [
      { kind: 'mwi-failure', station: '5551234', cause: 'INV' },
      { kind: 'mwi-failure', station: '5550000', cause: 'BLK' },
    ]);
  });
  it('tells call-detail messages and noise apart', () => {
    assert.deepEqual(parseReply('\r\nMD0010001A5551234 5559999 \r\n'), { kind: 'md' });
    assert.deepEqual(parseReply('\r\nhello\u0007\r\n'), { kind: 'unknown', text: 'hello?' });
    assert.equal(parseReply('\r\n'), undefined);
  });
  it('drops an over-long message without an end', () => {
    const out = new SmdiReplyReader().push(Buffer.alloc(300, 0x41));
    assert.equal(out.length, 1);
    assert.equal(out[0]?.kind, 'unknown');
  });
});

describe('line settings', () => {
  it('stty gets raw -echo first, then speed, size, parity and stop bits', () => {
    assert.deepEqual(sttyArgs('/dev/ttyS0', DEFAULT_LINE), ['-F', '/dev/ttyS0', 'raw', '-echo', '9600', 'cs7', 'parenb', '-parodd', '-cstopb']);
    assert.deepEqual(sttyArgs('/dev/ttyS1', { baudrate: 1200, charsize: 8, parity: 'odd', twoStopBits: true }).slice(4), ['1200', 'cs8', 'parenb', 'parodd', 'cstopb']);
    assert.deepEqual(sttyArgs('/dev/ttyS1', { baudrate: 2400, charsize: 8, parity: 'none', twoStopBits: false }).slice(4), ['2400', 'cs8', '-parenb', '-parodd', '-cstopb']);
  });
  it('the read-back names what the device did not take', () => {
    const pty = 'speed 1200 baud; rows 0; columns 0; line = 0;\n-parenb -parodd -cmspar cs8 -hupcl -cstopb cread -clocal -crtscts\n-opost onlcr\n-isig -icanon iexten -echo echoe';
    assert.deepEqual(missingLineSettings({ ...DEFAULT_LINE, baudrate: 1200 }, pty), ['cs7', 'parenb']);
    assert.deepEqual(missingLineSettings({ baudrate: 1200, charsize: 8, parity: 'none', twoStopBits: false }, pty), []);
    assert.deepEqual(missingLineSettings(DEFAULT_LINE, pty).slice(0, 1), ['speed']);
  });
});

describe('smdi.conf', () => {
  it('reads ports with the settings above them, and stations per port', async () => {
    const file = await conf(`[interfaces]
baudrate = 1200
charsize = 8
paritybit = odd
twostopbits = yes
msdstrip = 2
smdiport => /dev/ttyS0
baudrate = 4800
smdiport => /dev/ttyS1

[mailboxes]
pollinginterval = 5
smdiport=/dev/ttyS0
5551234=1234@vmcontext1
5555678 = 5678 ; a comment
5559999=1234@vmcontext1
smdiport=/dev/ttyS1
5550000=9999@other
`);
    const c = await readSmdiConf(file);
    assert.equal(c.interfaces.length, 2);
    assert.deepEqual(c.interfaces[0]?.line, { baudrate: 1200, charsize: 8, parity: 'odd', twoStopBits: true });
    assert.equal(c.interfaces[0]?.msdstrip, 2);
    assert.deepEqual(c.interfaces[1]?.line, { baudrate: 4800, charsize: 8, parity: 'odd', twoStopBits: true });
    assert.equal(c.pollingIntervalSeconds, 5);
    const plan = planSmdiTarget(c, '/dev/ttyS0', 'mwi.targets.0.port');
    assert.equal(plan.device, '/dev/ttyS0');
    assert.deepEqual([...plan.stations], [['1234@vmcontext1', ['5551234', '5559999']], ['5678@default', ['5555678']]]);
    assert.deepEqual([...planSmdiTarget(c, '/dev/ttyS1', 'k').stations], [['9999@other', ['5550000']]]);
    assert.throws(() => planSmdiTarget(c, undefined, 'mwi.targets.0.port'), (e: unknown) => e instanceof ConfigError && /2 smdiport lines; set mwi\.targets\.0\.port/.test(e.message));
    assert.throws(() => planSmdiTarget(c, '/dev/ttyS9', 'k'), ConfigError);
  });

  it('defaults to 9600 7E1 and no msdstrip, like res_smdi', async () => {
    const c = await readSmdiConf(await conf('[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n1000=1000\n'));
    assert.deepEqual(c.interfaces[0]?.line, DEFAULT_LINE);
    assert.equal(c.interfaces[0]?.msdstrip, 0);
    assert.equal(planSmdiTarget(c, undefined, 'k').device, '/dev/ttyS0');
  });

  const bad: ReadonlyArray<[string, string, number, RegExp]> = [
    ['baud rate', '[interfaces]\nbaudrate = 19200\nsmdiport => /dev/ttyS0\n', 2, /baudrate "19200"/],
    ['charsize', '[interfaces]\ncharsize = 6\n', 2, /charsize "6"/],
    ['parity', '[interfaces]\n\nparitybit = mark\n', 3, /paritybit "mark"/],
    ['stop bits', '[interfaces]\ntwostopbits = maybe\n', 2, /twostopbits "maybe"/],
    ['msdstrip', '[interfaces]\nmsdstrip = 12\n', 2, /msdstrip "12"/],
    ['relative port', '[interfaces]\nsmdiport => ttyS0\n', 2, /absolute device path/],
    ['station before smdiport', '[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\n1000=1000\n', 4, /before any smdiport/],
    ['unknown port', '[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS3\n', 4, /not an smdiport of \[interfaces\]/],
    ['station not digits', '[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n12ab=1000\n', 5, /station "12ab"/],
    ['unsafe mailbox', '[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n1000=../x@default\n', 5, /not mailbox\[@context\]/],
    ['station twice', '[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n1000=1000\n1000=2000\n', 6, /mapped twice/],
    ['syntax', '[interfaces]\nbaudrate\n', 2, /./],
  ];
  for (const [what, text, line, message] of bad) {
    it(`refuses a bad ${what}, naming file and line`, async () => {
      const file = await conf(text);
      await assert.rejects(readSmdiConf(file), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.file, file);
        assert.ok(e.message.startsWith(`${file}:${line}: `), e.message);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  it('keeps unknown options as problems, as Asterisk ignores them', async () => {
    const c = await readSmdiConf(await conf('[interfaces]\nfancy = 1\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n1000=1000\n'));
    assert.equal(c.problems.length, 1);
    assert.equal(c.problems[0]?.line, 2);
  });

  it('a port without stations is refused', async () => {
    const c = await readSmdiConf(await conf('[interfaces]\nsmdiport => /dev/ttyS0\n'));
    assert.throws(() => planSmdiTarget(c, undefined, 'k'), /maps no station/);
  });

  it('is checked by the settings loader at start', async () => {
    const settingsFile = join(dir, `s-${++n}.yaml`);
    const good = await conf('[interfaces]\nsmdiport => /dev/ttyS0\n[mailboxes]\nsmdiport=/dev/ttyS0\n1000=1000\n');
    await writeFile(settingsFile, `imap:\n  host: mail.example.com\nmwi:\n  targets:\n    - { name: lamps, kind: smdi, smdiConf: ${good} }\n`);
    const loaded = await loadSettings({ file: settingsFile, env: {}, defaultFile: join(dir, 'absent.yaml') });
    const t = loaded.settings.mwi.targets[0];
    assert.equal(t?.kind, 'smdi');
    assert.equal(t?.kind === 'smdi' ? t.reopenMaxSeconds : 0, 30);

    const badConf = await conf('[interfaces]\nsmdiport => /dev/ttyS0\nbaudrate = 300\n');
    await writeFile(settingsFile, `imap:\n  host: mail.example.com\nmwi:\n  targets:\n    - { name: lamps, kind: smdi, smdiConf: ${badConf} }\n`);
    await assert.rejects(loadSettings({ file: settingsFile, env: {}, defaultFile: join(dir, 'absent.yaml') }), (e: unknown) => e instanceof ConfigError && e.message.includes(`${badConf}:3:`));
    await writeFile(settingsFile, `imap:\n  host: mail.example.com\nmwi:\n  targets:\n    - { name: lamps, kind: smdi, smdiConf: ${join(dir, 'missing.conf')} }\n`);
    await assert.rejects(loadSettings({ file: settingsFile, env: {}, defaultFile: join(dir, 'absent.yaml') }), (e: unknown) => e instanceof ConfigError && e.message.includes('missing.conf'));
  });
});
