/** What the server offers, detected per connection after login (never assumed). */
import type { ImapFlow } from 'imapflow';

export interface ServerCapabilities {
  readonly uidplus: boolean;
  readonly move: boolean;
  readonly condstore: boolean;
  readonly qresync: boolean;
  readonly idle: boolean;
  readonly notify: boolean;
  readonly quota: boolean;
  readonly specialUse: boolean;
}

export function capabilitiesOf(client: ImapFlow): ServerCapabilities {
  const has = (name: string): boolean => client.capabilities.has(name);
  return {
    uidplus: has('UIDPLUS'),
    move: has('MOVE'),
    condstore: has('CONDSTORE'),
    qresync: has('QRESYNC'),
    idle: has('IDLE'),
    notify: has('NOTIFY'),
    quota: has('QUOTA'),
    specialUse: has('SPECIAL-USE'),
  };
}
