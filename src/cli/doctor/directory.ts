/** voicemail.conf as the service would read it, once per doctor run (two checks need it). */
import { readPasswordsFile } from '../../config/passwords.js';
import type { Settings } from '../../config/schema.js';
import { readVoicemailConf, type VoicemailConf } from '../../config/voicemail-conf.js';
import { buildDirectory, type Directory } from '../../sync/directory.js';

export type DirectoryRead =
  | { readonly ok: true; readonly conf: VoicemailConf; readonly directory: Directory }
  | { readonly ok: false; readonly error: string };

export function readDirectoryOnce(settings: Settings): () => Promise<DirectoryRead> {
  let pending: Promise<DirectoryRead> | undefined;
  return () => (pending ??= read(settings));
}

async function read(settings: Settings): Promise<DirectoryRead> {
  try {
    const conf = await readVoicemailConf(settings.spool.voicemailConf);
    const passwords = await readPasswordsFile(settings.imap.login.passwordsFile);
    return { ok: true, conf, directory: buildDirectory(conf, settings, passwords) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
