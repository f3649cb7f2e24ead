/**
 * What the HTTP listener needs to serve the status page: the login, and how to make the figures
 * from the directory in use (it follows reloads) and what Redis holds.
 */
import type { Redis } from 'ioredis';
import type { Settings } from '../config/schema.js';
import type { QueueBoard } from '../http/queue-board.js';
import type { StatusPageServing } from '../http/server.js';
import { listStale } from '../queue/stale-marks.js';
import type { Directory } from '../sync/directory.js';
import type { StatusStore } from './status-store.js';
import { buildStatusView } from './status-view.js';

export function statusServing(settings: Settings, redis: Redis, store: StatusStore, directory: () => Directory, board: QueueBoard | undefined): { status?: StatusPageServing } {
  const page = settings.http.status;
  // load-settings refuses an enabled page without a password; checked again so a type says so.
  if (!page.enabled || page.password === undefined) return {};
  return {
    status: {
      credentials: { username: page.username, password: page.password },
      refreshSeconds: page.refreshSeconds,
      view: async () => {
        const [snapshot, stale] = await Promise.all([store.read(), listStale(redis, settings.redis.prefix)]);
        const boxes = [...directory().boxes.values()].map((b) => ({ ref: b.ref, owner: b.owner.fullName, imapUser: b.account.user }));
        return buildStatusView(boxes, snapshot, stale, Date.now());
      },
      ...(board ? { board } : {}),
    },
  };
}
