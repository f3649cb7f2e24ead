/**
 * What a mailbox's voicemail email carries, from voicemail.conf as app_voicemail reads it
 * (apply_option, load_config) plus vmbridge's own choice of audio:
 *
 * - `attach=` (the mailbox's, else [general]'s): no attachment when false. Asterisk's sample and
 *   its default are yes.
 * - `attachfmt=`: the recorded format Asterisk attaches; else the first of `format=`.
 * - `volgain=`: the gain Asterisk adds with SoX before attaching (a linear factor, sox -v).
 * - `vmbridge_audio=` (the mailbox's, else [general]'s, else email.audio): mp3, wav, original or
 *   original+mp3. Asterisk ignores options it does not know, on mailbox lines and in [general].
 */
import { AUDIO_MODES, type AttachmentPolicy, type AudioMode } from '../audio/formats.js';
import { boxOption, stripSpace, type VoicemailBox, type VoicemailConf } from './voicemail-conf.js';

/** ast_true(): what Asterisk takes for "yes". */
export function asteriskTrue(value: string): boolean {
  return /^(yes|true|y|t|1|on)$/i.test(stripSpace(value));
}

/** voicemail.conf format=: `|`-separated, default wav. */
export function recordedFormats(conf: VoicemailConf): string[] {
  const list = (conf.general['format'] ?? 'wav').split('|').map(stripSpace).filter((f) => f !== '');
  return list.length > 0 ? list : ['wav'];
}

export function boxAttachmentPolicy(conf: VoicemailConf, box: VoicemailBox, fallback: AudioMode): { policy: AttachmentPolicy; problem?: string } {
  const attachText = boxOption(conf, box, 'attach');
  const attachfmt = stripSpace(boxOption(conf, box, 'attachfmt') ?? '');
  const modeText = stripSpace(boxOption(conf, box, 'vmbridge_audio') ?? '').toLowerCase();
  let mode = fallback;
  let problem: string | undefined;
  if (modeText !== '') {
    if ((AUDIO_MODES as readonly string[]).includes(modeText)) mode = modeText as AudioMode;
    else problem = `vmbridge_audio=${modeText} is not one of ${AUDIO_MODES.join(', ')}; ${fallback} is used`;
  }
  const volgainText = stripSpace(boxOption(conf, box, 'volgain') ?? '');
  let volgain: number | undefined;
  if (volgainText !== '') {
    // Asterisk reads it with sscanf("%30lf"): a number, or nothing.
    const n = Number.parseFloat(volgainText);
    if (Number.isFinite(n) && Math.abs(n) <= 100) volgain = n;
    else problem = `${problem ? `${problem}; ` : ''}volgain=${volgainText} is not a gain factor; ignored`;
  }
  const policy: AttachmentPolicy = {
    attach: attachText === undefined ? true : asteriskTrue(attachText),
    mode,
    formats: recordedFormats(conf),
    ...(attachfmt !== '' ? { attachfmt } : {}),
    ...(volgain !== undefined && Math.abs(volgain) > 0.001 ? { volgain } : {}),
  };
  return problem === undefined ? { policy } : { policy, problem };
}
