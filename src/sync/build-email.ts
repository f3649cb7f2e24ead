/**
 * Turns a store's message into the bytes of its email: attachments (MP3 or as configured), the
 * transcript where the transcription stage gives one in time, and the template voicemail.conf
 * asks for. A message whose audio or envelope cannot be read gives a problem, not an error: one
 * unreadable message must not hold up the rest of the mailbox.
 */
import { hostname } from 'node:os';
import { prepareAttachments, type Converter, type PreparedAttachment } from '../audio/attachments.js';
import type { Settings } from '../config/schema.js';
import { SpoolError } from '../errors.js';
import { buildVoicemailEmail } from '../imap/voicemail-email.js';
import type { Logger } from '../log.js';
import { isNewFinding } from '../spool/report-once.js';
import { mailboxKey, type MailboxRef, type SpoolMessage } from '../spool/types.js';
import type { VoicemailStore } from '../store/types.js';
import type { EmailTranscriber } from '../transcribe/transcriber.js';
import type { BoxInfo } from './directory.js';
import type { Op } from './plan.js';

export interface EmailBuildDeps {
  readonly settings: Settings;
  readonly store: VoicemailStore;
  readonly audio?: Converter;
  readonly transcriber?: EmailTranscriber;
  /** The full name of a mailbox in voicemail.conf (for "forwarded or copied from"). */
  readonly ownerName?: (ref: MailboxRef) => string | undefined;
}

export type Built = { readonly raw: Buffer } | { readonly problem: string; readonly file: string };

export async function buildEmail(deps: EmailBuildDeps, box: BoxInfo, message: SpoolMessage, log: Logger): Promise<Built> {
  const { settings } = deps;
  const readAudio = (path: string): Promise<Buffer> => deps.store.readAudio(box.ref, path);
  // Under way while the attachments are made; it never rejects and waits at most its budget.
  const transcribing = deps.transcriber?.forEmail(box.ref, message, readAudio, log);
  try {
    let attachments: PreparedAttachment[] | undefined;
    if (box.attachments) {
      const prepared = await prepareAttachments(box.attachments, message, readAudio, deps.audio);
      for (const w of prepared.warnings) log.warn({ file: w.file, problem: w.problem }, 'recording not converted');
      attachments = prepared.attachments;
    }
    const transcript = await transcribing;
    const raw = await buildVoicemailEmail({
      ref: box.ref,
      message,
      owner: box.owner,
      timezone: box.timezone,
      from: settings.email.from,
      serverName: settings.email.serverName,
      ...(box.asteriskExtension !== undefined ? { asteriskExtension: box.asteriskExtension } : {}),
      ...(box.charset !== undefined ? { charset: box.charset } : {}),
      onCharsetFallback: (why) => {
        // Once per mailbox and setting: every email of the mailbox would say the same.
        if (isNewFinding(`charset ${mailboxKey(box.ref)}`, box.charset ?? '')) log.warn({ mailbox: mailboxKey(box.ref), setting: 'charset', problem: why }, 'voicemail.conf charset= cannot be used for this mailbox\'s email; its text is sent as UTF-8');
      },
      messageIdDomain: settings.email.messageIdDomain,
      readAudio,
      ...(attachments ? { attachments } : {}),
      ...(box.emailLook ? { look: box.emailLook, hostname: hostname() } : {}),
      ...(transcript ? { transcript } : {}),
      ...(deps.ownerName ? { ownerName: deps.ownerName } : {}),
      onTemplateProblem: (problems) => {
        for (const p of problems) {
          if (isNewFinding(`email template: ${p}`, 'reported')) log.warn({ mailbox: mailboxKey(box.ref), uses: p }, 'voicemail.conf email template uses what vmbridge cannot evaluate; it is left out');
        }
      },
    });
    return { raw };
  } catch (err) {
    if (!(err instanceof SpoolError) && !isFsError(err)) throw err;
    return { problem: err instanceof Error ? err.message : String(err), file: message.txtPath };
  }
}

/** Builds the emails of a plan's appends in order, keeping the next one under way. */
export class EmailPipeline {
  private readonly following = new Map<Op, Op>();
  private readonly started = new Map<Op, Promise<Built>>();

  constructor(ops: readonly Op[], private readonly build: (op: Op) => Promise<Built>) {
    const appends = ops.filter((op) => op.kind === 'append');
    appends.forEach((op, i) => {
      const next = appends[i + 1];
      if (next) this.following.set(op, next);
    });
  }

  take(op: Op): Promise<Built> {
    const result = this.start(op);
    this.started.delete(op);
    const ahead = this.following.get(op);
    if (ahead) this.start(ahead).catch(() => undefined); // its error is seen when it is taken
    return result;
  }

  private start(op: Op): Promise<Built> {
    let p = this.started.get(op);
    if (!p) this.started.set(op, (p = this.build(op)));
    return p;
  }
}

function isFsError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' && (err as { syscall?: unknown }).syscall !== undefined;
}
