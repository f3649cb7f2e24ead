/**
 * Makes the audio attachments of one voicemail email: the recordings planAttachments chose, read
 * from the spool, and the conversions it asked for. A recording the audio tool cannot convert is
 * attached as it is, with a warning: the voicemail still reaches the mailbox.
 */
import { posix } from 'node:path';
import { AudioToolError, SpoolError } from '../errors.js';
import type { SpoolMessage } from '../spool/types.js';
import { audioContentType, planAttachments, type AttachmentPolicy } from './formats.js';

export interface PreparedAttachment {
  readonly filename: string;
  readonly content: Buffer;
  readonly contentType: string;
}

/** What converts a recording (SoxTranscoder), as far as this module needs it. */
export interface Converter {
  convert(input: Buffer, ext: string, to: 'mp3' | 'wav', gain?: number): Promise<Buffer>;
}

export interface PreparedAudio {
  readonly attachments: PreparedAttachment[];
  /** Conversions that failed, each with the file and the reason; the file was attached as it is. */
  readonly warnings: { readonly file: string; readonly problem: string }[];
}

export async function prepareAttachments(
  policy: AttachmentPolicy,
  message: SpoolMessage,
  readAudio: (path: string) => Promise<Buffer>,
  converter: Converter | undefined,
): Promise<PreparedAudio> {
  const attachments: PreparedAttachment[] = [];
  const warnings: { file: string; problem: string }[] = [];
  const read = async (path: string): Promise<Buffer> => {
    try {
      return await readAudio(path);
    } catch (cause) {
      // A store's own error already names what it could not read (a table row, say).
      if (cause instanceof SpoolError) throw cause;
      throw new SpoolError(path, 'could not read the recording', { cause });
    }
  };
  for (const step of planAttachments(policy, message.audio)) {
    const file = step.kind === 'file' ? step.file : step.from;
    const content = await read(file.path);
    const name = posix.basename(file.path);
    if (step.kind === 'file') {
      attachments.push({ filename: name, content, contentType: audioContentType(file.ext) });
      continue;
    }
    if (!converter) {
      warnings.push({ file: file.path, problem: `no audio tool configured to make ${step.to.toUpperCase()}; attached as it is` });
      attachments.push({ filename: name, content, contentType: audioContentType(file.ext) });
      continue;
    }
    try {
      const converted = await converter.convert(content, file.ext, step.to, policy.volgain);
      attachments.push({ filename: `${name.slice(0, name.lastIndexOf('.'))}.${step.to}`, content: converted, contentType: audioContentType(step.to) });
    } catch (err) {
      if (!(err instanceof AudioToolError)) throw err;
      warnings.push({ file: file.path, problem: `${err.message}; attached as it is` });
      // Once is enough: an original+mp3 email may already carry this very file.
      if (!attachments.some((a) => a.filename === name)) attachments.push({ filename: name, content, contentType: audioContentType(file.ext) });
    }
  }
  return { attachments, warnings };
}
