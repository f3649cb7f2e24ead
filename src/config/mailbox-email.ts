/**
 * A mailbox's email options from voicemail.conf, as app_voicemail takes them: fromstring=,
 * serveremail=, emailsubject=, emailbody= and locale= per mailbox (apply_option) over [general];
 * emaildateformat= and pbxskip= from [general] only (load_config).
 */
import { ASTERISK_DATE_FORMAT, type EmailLook } from '../email/asterisk-look.js';
import { asteriskTrue } from './mailbox-audio.js';
import { boxOption, type VoicemailBox, type VoicemailConf } from './voicemail-conf.js';

export function boxEmailLook(conf: VoicemailConf, box: VoicemailBox, wording: EmailLook['wording']): EmailLook {
  const opt = (key: string): string | undefined => {
    const v = boxOption(conf, box, key);
    return v === undefined || v === '' ? undefined : v;
  };
  const fromstring = opt('fromstring');
  const serveremail = opt('serveremail');
  const emailsubject = opt('emailsubject');
  const emailbody = opt('emailbody');
  const locale = opt('locale');
  return {
    wording,
    emaildateformat: conf.general['emaildateformat'] || ASTERISK_DATE_FORMAT,
    pbxskip: asteriskTrue(conf.general['pbxskip'] ?? 'no'),
    ...(fromstring !== undefined ? { fromstring } : {}),
    ...(serveremail !== undefined ? { serveremail } : {}),
    ...(emailsubject !== undefined ? { emailsubject } : {}),
    ...(emailbody !== undefined ? { emailbody } : {}),
    ...(locale !== undefined ? { locale } : {}),
  };
}
