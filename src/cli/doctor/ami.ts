/** asterisk.ami: the Manager Interface answers and the configured user can log in. */
import { AmiAuthError, AmiClient } from '../../mwi/ami-client.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

const TIMEOUT_MS = 5_000;

/** Why the AMI check failed, in words an administrator can act on; never the secret. */
function describeAmiFailure(err: unknown, secret: string): string {
  const text = err instanceof Error ? err.message : String(err);
  const scrubbed = secret.length >= 3 ? text.split(secret).join('***') : text;
  if (err instanceof AmiAuthError) return `login refused: ${scrubbed}; see asterisk.ami.username/secretFile and manager.conf`;
  return `not reachable or no login: ${scrubbed}`;
}

export const amiCheck: DoctorCheck = {
  perServer: true,
  name: 'ami',
  describes: 'When asterisk.ami is set: the Asterisk Manager Interface answers and its user can log in (the AMI version is shown).',
  async run(ctx): Promise<CheckResult[]> {
    const ami = ctx.settings.asterisk.ami;
    if (!ami) return [];
    const section = `AMI ${ami.host}:${ami.port}`;
    if (ami.secret === undefined) return [{ section, status: 'fail', message: 'no secret: set asterisk.ami.secretFile' }];
    // A one-shot, request-only session: no events, no reconnect, no keepalive.
    const client = new AmiClient({
      host: ami.host, port: ami.port, username: ami.username, secret: ami.secret,
      events: false, reconnect: false, keepaliveMs: 0, connectTimeoutMs: TIMEOUT_MS, actionTimeoutMs: TIMEOUT_MS,
      actionIdPrefix: 'doctor',
      ...(ami.secure ? { tls: ami.tls } : {}),
    });
    try {
      await client.connect();
      const version = client.version ?? 'unknown';
      return [{ section, status: 'ok', message: `login ${ami.username}: works, AMI version ${version}`, data: { login: 'ok', user: ami.username, version } }];
    } catch (err) {
      return [{ section, status: 'fail', message: `login ${ami.username}: ${describeAmiFailure(err, ami.secret)}`, data: { login: 'failed', user: ami.username } }];
    } finally {
      await client.close().catch(() => undefined);
    }
  },
};
