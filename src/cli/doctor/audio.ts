/** The audio tool that makes the MP3 (or WAV) attachments, when a mailbox needs one. */
import { SoxTranscoder } from '../../audio/sox.js';
import { conversionsNeeded } from '../../audio/start.js';
import type { AudioMode } from '../../audio/formats.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

export const audioCheck: DoctorCheck = {
  name: 'audio',
  describes: 'the audio tool (email.audioTool, SoX) runs and writes what the mailboxes\' attachments need (MP3 by default)',
  async run(ctx) {
    const section = 'audio';
    const read = await ctx.directory();
    const policies = read.ok ? [...read.directory.boxes.values()].map((b) => b.attachments) : [];
    const needed = conversionsNeeded(policies);
    const modes = new Map<AudioMode | 'no audio', number>();
    for (const p of policies) {
      const key = !p ? ctx.settings.email.audio : p.attach ? p.mode : 'no audio';
      modes.set(key, (modes.get(key) ?? 0) + 1);
    }
    const summary = [...modes].map(([m, n]) => `${n} ${m}`).join(', ') || `${ctx.settings.email.audio} (no mailbox yet)`;
    if (needed.size === 0) {
      return [{ section, status: 'ok', message: `attachments: ${summary}; no conversion needed, so no audio tool`, data: { conversions: 0 } }];
    }
    const tool = ctx.settings.email.audioTool.command;
    try {
      const version = await new SoxTranscoder({ command: tool, timeoutMs: ctx.settings.email.audioTool.timeoutSeconds * 1000 }).check(needed);
      return [{ section, status: 'ok', message: `attachments: ${summary}; ${tool} ${version} writes ${[...needed].join(' and ').toUpperCase()}`, data: { tool, version } }];
    } catch (err) {
      const result: CheckResult = { section, status: 'fail', message: err instanceof Error ? err.message : String(err), data: { tool } };
      return [result];
    }
  },
};
