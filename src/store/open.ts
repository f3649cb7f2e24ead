/** Opens the voicemail store the settings name (the file spool today). */
import type { Settings } from '../config/schema.js';
import { FileSpoolStore, type FileSpoolStoreOptions } from './file-spool.js';
import { spoolLockmode } from './spool-changes.js';

export async function openFileSpool(settings: Settings, ami?: FileSpoolStoreOptions['ami']): Promise<FileSpoolStore> {
  return new FileSpoolStore({ spoolDir: settings.spool.dir, lockmode: await spoolLockmode(settings), ...(ami ? { ami } : {}) });
}
