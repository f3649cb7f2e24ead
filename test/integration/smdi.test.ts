/**
 * The smdi MWI target against a serial line made of two linked pseudo-terminals (socat): the
 * exact bytes at the switch's end for light and clear, nothing for an unchanged lamp, the line
 * settings applied with stty, the switch's answers read, and the device closed and reopened.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SmdiMwiTarget } from '../../src/config/schema.js';
import { SmdiDeviceError } from '../../src/mwi/smdi-port.js';
import { SmdiSender } from '../../src/mwi/smdi-sender.js';
import { memoryLogger } from '../support/memory-log.js';
import { openPtyEnd, startPtyPair, type PtyEnd, type PtyPair } from '../support/pty-pair.js';
import { waitFor } from '../support/wait.js';

const EOT = '\x04';
const box = { context: 'default', mailbox: '1000' };
const other = { context: 'sales', mailbox: '2000' };
const lit = { new: 1, old: 0, urgent: 0 };

describe('SMDI lamps over a pseudo-terminal pair', () => {
  let dir: string;
  let pair: PtyPair;
  let sw: PtyEnd;
  let sender: SmdiSender;
  const { log, lines } = memoryLogger();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-smdi-'));
    pair = await startPtyPair(join(dir, 'a'), join(dir, 'b'));
    sw = await openPtyEnd(pair.b);
    const conf = join(dir, 'smdi.conf');
    await writeFile(
      conf,
      `[interfaces]\nbaudrate = 1200\ncharsize = 8\nparitybit = none\nmsdstrip = 3\nsmdiport => ${pair.a}\n\n[mailboxes]\nsmdiport = ${pair.a}\n5551000 = 1000@default\n5551001 = 1000\n5552000 = 2000@sales\n`,
    );
    const target: SmdiMwiTarget = { kind: 'smdi', name: 'lamps', smdiConf: conf, reopenMaxSeconds: 1, timeoutSeconds: 5 };
    sender = new SmdiSender(target, { log, reopenInitialMs: 100 });
  });
  after(async () => {
    await sender?.close();
    sw?.close();
    await pair?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const seen = (end: PtyEnd): string => end.bytes().toString('latin1');
  const waitForBytes = (end: PtyEnd, want: string): Promise<string> =>
    waitFor(`${JSON.stringify(want)} at the switch's end (got ${JSON.stringify(seen(end))})`, () => (seen(end) === want ? want : undefined), { timeoutMs: 10_000 });

  it('lights every station of the mailbox with OP:MWI, msdstrip zeros first, and sets the line', async () => {
    await sender.publish(box, lit);
    const want = `OP:MWI 0005551000!${EOT}OP:MWI 0005551001!${EOT}`;
    await waitForBytes(sw, want);
    const settings = execFileSync('stty', ['-F', pair.a, '-a'], { encoding: 'utf8' });
    assert.match(settings, /speed 1200 baud/);
    for (const flag of ['cs8', '-parenb', '-cstopb', '-icanon', '-echo', '-opost']) assert.ok(settings.split(/\s+/).includes(flag), flag);
  });

  it('sends nothing while the lamp stays on, then RMV:MWI to clear it', async () => {
    const before = seen(sw);
    await sender.publish(box, { new: 4, old: 2, urgent: 1 });
    await sender.publish(box, { new: 0, old: 5, urgent: 0 });
    // The only bytes after the unchanged publication are the clears: it wrote nothing itself.
    await waitForBytes(sw, `${before}RMV:MWI 0005551000!${EOT}RMV:MWI 0005551001!${EOT}`);
    await sender.publish(box, { new: 0, old: 6, urgent: 0 });
    await sender.publish(other, lit);
    await waitForBytes(sw, `${before}RMV:MWI 0005551000!${EOT}RMV:MWI 0005551001!${EOT}OP:MWI 0005552000!${EOT}`);
  });

  it('ignores a mailbox without a station', async () => {
    const before = seen(sw);
    await sender.publish({ context: 'default', mailbox: '9999' }, lit);
    await sender.publish(other, { new: 0, old: 0, urgent: 0 });
    await waitForBytes(sw, `${before}RMV:MWI 0005552000!${EOT}`);
  });

  it("logs the switch's failure answers", async () => {
    await sw.write(`\r\nMWI0005552000 INV\r\n\x19`);
    await waitFor('the INV warning', () => lines.some((l) => l.includes('MWI INV') && l.includes('"station":"5552000"')));
  });

  it('fails naming the device while it is gone, reopens it, and writes a lit lamp again after the reopen', async () => {
    await sender.publish(box, lit);
    await waitFor('the lamp lit before the cable is pulled', () => seen(sw).endsWith(`OP:MWI 0005551001!${EOT}`));
    sw.close();
    await pair.stop();
    await waitFor('the loss to be logged', () => lines.some((l) => l.includes('SMDI device') && l.includes('lost') && l.includes(pair.a)));
    await assert.rejects(sender.publish(box, { new: 0, old: 1, urgent: 0 }), (e: unknown) => {
      assert.ok(e instanceof SmdiDeviceError, String(e));
      assert.equal(e.device, pair.a);
      assert.match(e.message, new RegExp(`SMDI device ${pair.a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not open`));
      return true;
    });
    await waitFor('a failed reopen to be logged', () => lines.some((l) => l.includes(`cannot open SMDI device ${pair.a}`)));

    pair = await startPtyPair(join(dir, 'a'), join(dir, 'b'));
    sw = await openPtyEnd(pair.b);
    await waitFor('the device to be reopened', () => lines.some((l) => l.includes('SMDI device reopened')), { timeoutMs: 10_000 });
    // Still lit, but what the switch was told before the loss is not known: written again.
    await sender.publish(box, { new: 2, old: 0, urgent: 0 });
    await waitForBytes(sw, `OP:MWI 0005551000!${EOT}OP:MWI 0005551001!${EOT}`);
    await sender.publish(box, { new: 3, old: 0, urgent: 0 });
    await sender.publish(box, { new: 0, old: 3, urgent: 0 });
    await waitForBytes(sw, `OP:MWI 0005551000!${EOT}OP:MWI 0005551001!${EOT}RMV:MWI 0005551000!${EOT}RMV:MWI 0005551001!${EOT}`);
  });
});

describe('SMDI line settings a pseudo-terminal cannot take', () => {
  it('are named in a warning, and the lamp still goes out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmb-smdi-7e1-'));
    const pair = await startPtyPair(join(dir, 'a'), join(dir, 'b'));
    const sw = await openPtyEnd(pair.b);
    const { log, lines } = memoryLogger();
    const conf = join(dir, 'smdi.conf');
    // res_smdi's defaults: 9600 baud, 7 bits, even parity. Linux ptys always report cs8 -parenb.
    await writeFile(conf, `[interfaces]\nsmdiport => ${pair.a}\n[mailboxes]\nsmdiport=${pair.a}\n1234567=1000\n`);
    const sender = new SmdiSender({ kind: 'smdi', name: 'lamps', smdiConf: conf, reopenMaxSeconds: 1, timeoutSeconds: 5 }, { log });
    try {
      await sender.publish(box, lit);
      await waitFor('the lamp message', () => sw.bytes().toString('latin1') === `OP:MWI 1234567!${EOT}`);
      const warning = lines.find((l) => l.includes('did not take every line setting'));
      assert.ok(warning, lines.join('\n'));
      assert.match(warning, /"missing":\["cs7","parenb"\]/);
      assert.match(execFileSync('stty', ['-F', pair.a, '-a'], { encoding: 'utf8' }), /speed 9600 baud/);
    } finally {
      await sender.close();
      sw.close();
      await pair.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
