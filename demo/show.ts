/**
 * Prints what a mail client sees in each demo mailbox, waiting until at least the given number of
 * voicemail emails are there:  show.ts <imap-port> <min-total> [<timeout-seconds>]
 */
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';

const USERS = [['alice', 'alicepw', '1000'], ['bob', 'bobpw', '1001'], ['carol', 'carolpw', '1002']] as const;
const FOLDERS = ['INBOX', 'Work', 'Family', 'Friends'];
const [portArg, minArg, timeoutArg] = process.argv.slice(2);
const port = Number(portArg ?? 10143);
const want = Number(minArg ?? 0);
const deadline = Date.now() + Number(timeoutArg ?? 30) * 1000;

interface Line { user: string; mailbox: string; folder: string; flags: string; subject: string; attachments: string }

async function look(): Promise<Line[]> {
  const lines: Line[] = [];
  for (const [user, pass, mailbox] of USERS) {
    const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass }, logger: false, disableAutoIdle: true });
    c.on('error', () => undefined);
    await c.connect();
    const existing = new Set((await c.list()).map((f) => f.path));
    for (const folder of FOLDERS) {
      if (folder !== 'INBOX' && !existing.has(folder)) continue;
      const lock = await c.getMailboxLock(folder);
      try {
        if (!c.mailbox || c.mailbox.exists === 0) continue;
        for (const m of await c.fetchAll('1:*', { uid: true, flags: true, source: true }, { uid: true })) {
          if (!m.source) continue;
          const parsed = await simpleParser(m.source);
          if (!parsed.headers.has('x-asterisk-vm-message-id')) continue;
          const flags = m.flags ?? new Set<string>();
          lines.push({
            user, mailbox, folder,
            flags: [flags.has('\\Seen') ? 'read' : 'unread', ...(flags.has('\\Flagged') ? ['flagged'] : [])].join(','),
            subject: parsed.subject ?? '',
            attachments: parsed.attachments.map((a) => `${a.filename} (${a.contentType}, ${Math.round(a.size / 1024)} KB)`).join(', '),
          });
        }
      } finally {
        lock.release();
      }
    }
    await c.logout();
  }
  return lines;
}

let lines = await look();
while (lines.length < want && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 200));
  lines = await look();
}
for (const l of lines) {
  process.stdout.write(`  ${l.user} (mailbox ${l.mailbox}) ${l.folder} [${l.flags}]\n    Subject: ${l.subject}\n    Attached: ${l.attachments}\n`);
}
if (lines.length < want) {
  process.stderr.write(`only ${lines.length} of ${want} voicemail emails arrived; see .demo/vmbridge.log\n`);
  process.exitCode = 1;
}
