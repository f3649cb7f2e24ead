/**
 * Leaves a new voicemail in the demo spool exactly the way Asterisk's app_voicemail writes one
 * (recorded into tmp/, folder locked, next number, audio renamed in first, the .txt last):
 *   leave.ts <spool-dir> <mailbox> "<caller id>"
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { leaveVoicemail } from '../test/support/asterisk-spool.js';

const [spoolDir, mailbox, callerid] = process.argv.slice(2);
if (!spoolDir || !mailbox) throw new Error('usage: leave.ts <spool-dir> <mailbox> "<caller id>"');
const audio = await readFile(fileURLToPath(new URL('./spool/voicemail/default/1000/INBOX/msg0001.wav', import.meta.url)));
const left = await leaveVoicemail(spoolDir, { context: 'default', mailbox }, {
  callerid: callerid ?? '"Demo Caller" <5550100>',
  duration: 5,
  formats: ['wav'],
  audio,
});
process.stdout.write(`${left.txtPath}\n`);
