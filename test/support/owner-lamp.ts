/**
 * The Asterisk that owns a test spool, as the lamp a phone shows: an AMI test server in the
 * voicemail profile on that spool (it publishes MessageWaiting from its own count after
 * VoicemailRefresh) and a listener session that collects those events with when they came.
 */
import { AmiClient, type AmiEvent } from '../../src/mwi/ami-client.js';
import { startAmiServer, type AmiTestServer } from './ami-server.js';

export interface OwnerLamp {
  readonly owner: AmiTestServer;
  /** MessageWaiting events in arrival order. */
  readonly events: Array<{ readonly at: number; readonly event: AmiEvent }>;
  /** The `mwi.targets` entry that points vmbridge at the owner. */
  readonly target: Record<string, unknown>;
  /** What the lamp of `mailbox@context` was set to, in order. */
  shown(mailbox: string): Array<{ new: number; old: number }>;
  close(): Promise<void>;
}

export async function startOwnerLamp(spoolDir: string): Promise<OwnerLamp> {
  const owner = await startAmiServer({ spoolDir, profile: 'voicemail' });
  const events: Array<{ at: number; event: AmiEvent }> = [];
  const listener = new AmiClient({ host: '127.0.0.1', port: owner.port, username: 'bridge', secret: 'bridge', reconnect: false });
  listener.on('event', (event) => {
    if (event.event === 'MessageWaiting') events.push({ at: performance.now(), event });
  });
  await listener.connect();
  return {
    owner,
    events,
    target: { name: 'owner', kind: 'ami-refresh', host: '127.0.0.1', port: owner.port, username: 'bridge', secret: 'bridge', timeoutSeconds: 5 },
    shown: (mailbox) => events.filter((e) => e.event.get('Mailbox') === mailbox).map((e) => ({ new: Number(e.event.get('New')), old: Number(e.event.get('Old')) })),
    async close() {
      await listener.close().catch(() => undefined);
      await owner.close();
    },
  };
}
