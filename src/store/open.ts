/**
 * Opens the voicemail store an installation uses: Asterisk's ODBC table when voicemail.conf sets
 * `odbcstorage=` (Asterisk then keeps every mailbox there), else the file spool.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { extensionOf } from '../audio/formats.js';
import { asteriskTrue, recordedFormats } from '../config/mailbox-audio.js';
import { spoolOwnership } from '../config/run-user.js';
import type { Settings } from '../config/schema.js';
import { readVoicemailConf, stripSpace, type VoicemailConf } from '../config/voicemail-conf.js';
import { ConfigError } from '../errors.js';
import { FileSpoolStore, type FileSpoolStoreOptions } from './file-spool.js';
import { urlFromAsteriskFiles } from './odbc/dsn-hints.js';
import { OdbcStore } from './odbc/odbc-store.js';
import { spoolLockmode } from './spool-changes.js';
import type { VoicemailStore } from './types.js';

type Ami = FileSpoolStoreOptions['ami'];

/**
 * The file spool. Run as root, vmbridge gives the folders it creates to asterisk.conf's
 * runuser/rungroup (else to the mailbox folder's owner); an unknown name there stops it here.
 */
export async function openFileSpool(settings: Settings, ami?: Ami): Promise<FileSpoolStore> {
  const owner = await spoolOwnership(settings);
  return new FileSpoolStore({ spoolDir: settings.spool.dir, lockmode: await spoolLockmode(settings), ...(ami ? { ami } : {}), ...(owner ? { owner } : {}) });
}

/** The store voicemail.conf says Asterisk uses; the ODBC table is checked before it is used. */
export async function openStore(settings: Settings, ami?: Ami, conf?: VoicemailConf): Promise<VoicemailStore> {
  const vm = conf ?? (await readVoicemailConf(settings.spool.voicemailConf));
  const odbcstorage = stripSpace(vm.general['odbcstorage'] ?? '');
  if (odbcstorage === '') return openFileSpool(settings, ami);
  const url = await odbcUrl(settings, odbcstorage);
  const store = new OdbcStore({
    url,
    urlSetting: settings.spool.odbc?.urlFile !== undefined ? 'spool.odbc.urlFile' : 'spool.odbc.url',
    table: stripSpace(vm.general['odbctable'] ?? '') || 'voicemessages',
    asteriskSpoolDir: settings.spool.odbc?.asteriskSpoolDir ?? settings.spool.dir,
    localSpoolDir: settings.spool.dir,
    lockmode: await spoolLockmode(settings),
    recordingExt: extensionOf(recordedFormats(vm)[0]!),
    audioOnDisk: asteriskTrue(vm.general['odbc_audio_on_disk'] ?? 'no'),
    pollSeconds: settings.spool.odbc?.pollSeconds ?? 5,
    ...(await ownershipOf(settings)),
    ...(ami ? { ami } : {}),
  });
  try {
    await store.check();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

async function ownershipOf(settings: Settings): Promise<{ ownership?: Awaited<ReturnType<typeof spoolOwnership>> }> {
  const ownership = await spoolOwnership(settings);
  return ownership ? { ownership } : {};
}

async function odbcUrl(settings: Settings, connection: string): Promise<string> {
  const odbc = settings.spool.odbc;
  const why = `voicemail.conf (${settings.spool.voicemailConf}) keeps voicemail in the ODBC connection ${JSON.stringify(connection)} (odbcstorage=)`;
  if (odbc?.url !== undefined && odbc.urlFile !== undefined) throw new ConfigError('spool.odbc.url and spool.odbc.urlFile are both set; set only one', { key: 'spool.odbc.urlFile' });
  if (odbc?.urlFile !== undefined) {
    let text: string;
    try {
      text = await readFile(odbc.urlFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`spool.odbc.urlFile: ${odbc.urlFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { key: 'spool.odbc.urlFile', file: odbc.urlFile });
    }
    const url = text.replace(/\r?\n$/, '');
    if (url === '' || /[\r\n]/.test(url)) throw new ConfigError(`spool.odbc.urlFile: ${odbc.urlFile} must hold the database URL on one line`, { key: 'spool.odbc.urlFile', file: odbc.urlFile });
    return url;
  }
  if (odbc?.url !== undefined) return odbc.url;
  // Neither is set: the database Asterisk itself uses, from res_odbc.conf and odbc.ini.
  const resOdbcConf = odbc?.resOdbcConf ?? join(dirname(settings.spool.voicemailConf), 'res_odbc.conf');
  const odbcIni = odbc?.odbcIni ?? '/etc/odbc.ini';
  try {
    return await urlFromAsteriskFiles(resOdbcConf, odbcIni, connection);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${why}, and its database could not be worked out from Asterisk's files: ${reason}. Set spool.odbc.urlFile (a file holding postgres://... or mysql://...) to that database`, { key: err instanceof ConfigError && err.key ? err.key : 'spool.odbc.urlFile', ...(err instanceof ConfigError && err.file ? { file: err.file } : {}) }, { cause: err });
  }
}
