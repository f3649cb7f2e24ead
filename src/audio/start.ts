/**
 * The audio tool for an installation, checked once at start: a missing SoX (or one without MP3)
 * is an error naming the packages, not a failure at every voicemail.
 */
import type { Settings } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { AttachmentPolicy } from './formats.js';
import { SoxTranscoder } from './sox.js';

/** What the mailboxes' policies need the tool to write. */
export function conversionsNeeded(policies: Iterable<AttachmentPolicy | undefined>): Set<'mp3' | 'wav'> {
  const needed = new Set<'mp3' | 'wav'>();
  for (const p of policies) {
    if (!p?.attach) continue;
    if (p.mode === 'mp3' || p.mode === 'original+mp3') needed.add('mp3');
    if (p.mode === 'wav') needed.add('wav');
  }
  return needed;
}

/** A checked transcoder, or undefined when no mailbox needs one. Throws AudioToolError when the tool cannot do what is needed. */
export async function startAudio(settings: Settings, policies: Iterable<AttachmentPolicy | undefined>, log: Logger): Promise<SoxTranscoder | undefined> {
  const needed = conversionsNeeded(policies);
  if (needed.size === 0) return undefined;
  const sox = new SoxTranscoder({ command: settings.email.audioTool.command, timeoutMs: settings.email.audioTool.timeoutSeconds * 1000 });
  const version = await sox.check(needed);
  log.info({ tool: settings.email.audioTool.command, version, makes: [...needed] }, 'audio tool ready');
  return sox;
}
