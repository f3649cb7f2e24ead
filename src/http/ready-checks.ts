/**
 * The components /readyz reports, each a ComponentCheck (./readiness.ts). The verdicts are pure
 * functions of what the service knows; the checks only gather it.
 */
import type { Redis } from 'ioredis';
import type { ImapServerSettings } from '../imap/connect.js';
import { probeImapServer } from '../imap/probe.js';
import type { MwiTargetHealth } from '../mwi/targets.js';
import type { PushSeen } from '../queue/push-seen.js';
import type { ComponentCheck, ComponentState } from './readiness.js';

const isoOrNothing = (ms: number | undefined): Record<string, string> => (ms === undefined ? {} : { lastAt: new Date(ms).toISOString() });

/** Redis: PING, unless the client already knows it is not connected (a PING would only queue). */
export function redisComponent(redis: Pick<Redis, 'status' | 'ping'>): ComponentCheck {
  return {
    name: 'redis',
    kind: 'redis',
    required: true,
    async check() {
      if (redis.status !== 'ready') return { status: 'down', detail: `not connected (${redis.status})` };
      const pong = await redis.ping();
      return { status: 'up', detail: `PING answered ${pong}` };
    },
  };
}

/** The IMAP server answers with an IMAP greeting (no login; see src/imap/probe.ts). */
export function imapComponent(server: ImapServerSettings, timeoutMs: number): ComponentCheck {
  return {
    name: `imap ${server.host}:${server.port}`,
    kind: 'imap',
    required: true,
    async check() {
      const v = await probeImapServer(server, timeoutMs);
      return { status: v.ok ? 'up' : 'down', detail: v.text };
    },
  };
}

/** The owning Asterisk's AMI session (asterisk.ami): it reconnects by itself; here only its state. */
export function amiSessionComponent(where: { host: string; port: number }, client: { readonly connected: boolean }): ComponentCheck {
  return {
    name: `ami ${where.host}:${where.port}`,
    kind: 'ami',
    required: false,
    async check() {
      return client.connected
        ? { status: 'up', detail: 'logged in' }
        : { status: 'down', detail: 'not logged in (retrying); changes from mail clients wait for it before they reach the spool' };
    },
  };
}

/** Pure: one MWI target's state from what its worker knows. */
export function mwiTargetState(h: MwiTargetHealth): ComponentState {
  const data = { targetKind: h.kind, ...(h.connection ? { connection: h.connection } : {}), ...isoOrNothing(h.last?.at), ...(h.last ? { lastOk: h.last.ok } : {}) };
  if (h.connection === 'connected') return { status: 'up', detail: 'AMI session logged in', data };
  if (h.connection === 'disconnected') return { status: 'down', detail: `AMI session lost (reconnecting)${h.last?.error ? `; last send: ${h.last.error}` : ''}`, data };
  if (h.last && !h.last.ok) return { status: 'down', detail: `the last publication failed: ${h.last.error ?? 'unknown error'}`, data };
  if (h.last) return { status: 'up', detail: 'the last publication was confirmed', data };
  return { status: 'unknown', detail: h.connection === 'not-started' ? 'not connected yet: connects at the first publication' : 'nothing published yet', data };
}

export function mwiTargetComponents(health: () => readonly MwiTargetHealth[]): ComponentCheck[] {
  return health().map((first) => ({
    name: `mwi-target ${first.name}`,
    kind: 'mwi-target' as const,
    required: false,
    async check() {
      const h = health().find((x) => x.name === first.name) ?? first;
      return mwiTargetState(h);
    },
  }));
}

/**
 * Pure: Dovecot push, one component per sender seen. Quiet is normal (no mail command, no POST),
 * so an old POST is reported with its age and left to the monitor to judge; none seen at all is
 * `unknown`.
 */
export function pushStates(seen: readonly PushSeen[], now: number): (ComponentState & { name: string })[] {
  if (seen.length === 0) return [{ name: 'dovecot-push', status: 'unknown', detail: 'no POST from Dovecot seen yet (see docs/push.md)' }];
  return seen.map((s) => {
    const ageSeconds = Math.max(0, Math.round((now - Date.parse(s.at)) / 1000));
    return { name: `dovecot-push ${s.sender}`, status: 'up' as const, detail: `last POST ${ageSeconds} s ago`, data: { sender: s.sender, lastAt: s.at, ageSeconds } };
  });
}

export function pushComponent(list: () => Promise<readonly PushSeen[]>): ComponentCheck {
  return {
    name: 'dovecot-push',
    kind: 'dovecot-push',
    required: false,
    async check() {
      return pushStates(await list(), Date.now());
    },
  };
}
