/**
 * Asterisk's MWI state cache (main/mwi.c) and the device state res_mwi_devstate derives from it,
 * per test server.
 *
 * - Publishing stores `new`/`old` with `urgent` 0 (app_voicemail publishes new+urgent as new) and
 *   raises MessageWaiting. `Waiting` is not the published count: manager_mwi.c recomputes it with
 *   ast_app_has_voicemail() when it writes the event, so the caller passes it in.
 * - `MWI:<mailbox>` becomes INUSE when new > 0, NOT_INUSE otherwise. DeviceStateChange follows
 *   MessageWaiting only when that state changes (fixtures ami/voicemail/41, mwiext 20 vs 21); a
 *   mailbox never published before has no device state, so its first publish always changes it
 *   (fixtures ami/mwiext/24: 0/0 still gives NOT_INUSE).
 */
import { deviceStateChange, messageWaiting, type ServerEvent } from './events.js';

export interface PublishedCounts {
  readonly urgent: number;
  readonly new: number;
  readonly old: number;
}

export class MwiState {
  private readonly published = new Map<string, PublishedCounts>();
  private readonly devices = new Map<string, 'INUSE' | 'NOT_INUSE'>();

  /** What Asterisk publishes at load, before any client is connected: no events. */
  seed(mailbox: string, newCount: number, oldCount: number): void {
    this.published.set(mailbox, { urgent: 0, new: newCount, old: oldCount });
    this.devices.set(`MWI:${mailbox}`, newCount > 0 ? 'INUSE' : 'NOT_INUSE');
  }

  get(mailbox: string): PublishedCounts | undefined {
    return this.published.get(mailbox);
  }

  /** Every mailbox with a cached state (ast_mwi_state_callback_all), sorted for stable output. */
  mailboxes(): string[] {
    return [...this.published.keys()].sort();
  }

  /** ast_delete_mwi_state: the cache entry goes; the device keeps its last state. */
  delete(mailbox: string): void {
    this.published.delete(mailbox);
  }

  /** Publishes and returns the events it raises, for the caller to deliver after its reply. */
  publish(mailbox: string, newCount: number, oldCount: number, waiting: boolean): ServerEvent[] {
    this.published.set(mailbox, { urgent: 0, new: newCount, old: oldCount });
    const events = [messageWaiting(mailbox, waiting, newCount, oldCount)];
    const device = `MWI:${mailbox}`;
    const state = newCount > 0 ? 'INUSE' : 'NOT_INUSE';
    if (this.devices.get(device) !== state) {
      this.devices.set(device, state);
      events.push(deviceStateChange(device, state));
    }
    return events;
  }
}
