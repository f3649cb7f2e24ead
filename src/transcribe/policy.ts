/**
 * Whether a mailbox's voicemail is transcribed, and in which language, from voicemail.conf as
 * app_voicemail reads its options (the mailbox's, else [general]'s). Pure: no I/O here.
 *
 * - `vmbridge_transcribe=yes|no`: vmbridge's own option (Asterisk ignores options it does not
 *   know); unset: transcription.enabled.
 * - `language=`: Asterisk's language of the mailbox's prompts; unset: the language of `locale=`
 *   (the locale Asterisk formats the email's dates with, `de_DE.UTF-8` gives `de_DE`); neither:
 *   transcription.defaultLanguage.
 */
import { asteriskTrue } from '../config/mailbox-audio.js';
import { boxOption, stripSpace, type VoicemailBox, type VoicemailConf } from '../config/voicemail-conf.js';

export interface BoxTranscription {
  readonly on: boolean;
  readonly language: string;
  readonly problem?: string;
}

/** The language part of a POSIX locale name (`de_DE.UTF-8@euro` -> `de_DE`); '' for none or C/POSIX. */
export function localeLanguage(locale: string | undefined): string {
  const name = stripSpace(locale ?? '').replace(/[.@].*$/, '');
  if (name === '' || name === 'C' || name === 'POSIX') return '';
  return /^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})?$/.test(name) ? name : '';
}

/** ast_false(): what Asterisk takes for "no". */
function asteriskFalse(value: string): boolean {
  return /^(no|false|n|f|0|off)$/i.test(stripSpace(value));
}

export function boxTranscription(conf: VoicemailConf, box: VoicemailBox, defaults: { enabled: boolean; defaultLanguage: string }): BoxTranscription {
  const text = boxOption(conf, box, 'vmbridge_transcribe');
  const language = stripSpace(boxOption(conf, box, 'language') ?? '') || localeLanguage(boxOption(conf, box, 'locale')) || defaults.defaultLanguage;
  if (text === undefined || stripSpace(text) === '') return { on: defaults.enabled, language };
  if (asteriskTrue(text)) return { on: true, language };
  if (asteriskFalse(text)) return { on: false, language };
  return { on: defaults.enabled, language, problem: `vmbridge_transcribe=${stripSpace(text)} is neither yes nor no; transcription.enabled (${defaults.enabled ? 'yes' : 'no'}) is used` };
}

/**
 * The configured model for a language: the same name (case aside, `_` and `-` alike), else the
 * language without its region (en_US finds en). Undefined: no model for it.
 */
export function modelKeyFor(language: string, keys: Iterable<string>): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replaceAll('_', '-');
  const wanted = norm(language);
  const list = [...keys];
  return list.find((k) => norm(k) === wanted) ?? list.find((k) => norm(k) === wanted.split('-')[0]);
}
