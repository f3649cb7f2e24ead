/** The file spool passes the voicemail-store contract (test/support/store-contract.ts). */
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { folderDir, leaveVoicemail, moveMessage } from '../support/asterisk-spool.js';
import { storeContract } from '../support/store-contract.js';

for (const lockmode of ['lockfile', 'flock'] as const) {
  storeContract(`file spool (lockmode=${lockmode})`, async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), 'vmbridge-store-'));
    return {
      store: new FileSpoolStore({ spoolDir, lockmode }),
      async leave(ref, opts) {
        const left = await leaveVoicemail(spoolDir, ref, { audio: opts.audio, formats: ['wav'], ...(opts.urgent ? { urgent: true } : {}) });
        return left.msgId;
      },
      async asteriskMove(ref, from, msgnum, to) {
        await moveMessage(spoolDir, ref, from, msgnum, to);
      },
      async leaveGap(ref, folder, msgnum) {
        const dir = folderDir(spoolDir, ref, folder);
        const base = `msg${String(msgnum).padStart(4, '0')}.`;
        for (const name of await readdir(dir)) if (name.startsWith(base)) await unlink(join(dir, name));
      },
      close: () => rm(spoolDir, { recursive: true, force: true }),
    };
  });
}
