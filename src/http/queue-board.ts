/**
 * The queue view: Bull Board (@bull-board) over every BullMQ queue of the installation, on the
 * status page's login, read-only unless http.status.readOnly is false. Bull Board brings its own
 * user interface and API; it is mounted through its Express adapter, the one its authors keep
 * for plain Node servers (docs/libraries.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express from 'express';
import type { Redis } from 'ioredis';
import { errorsLoggedByConnectionOwner } from '../queue/redis-connection.js';

export const QUEUES_PATH = '/queues';

export interface QueueBoard {
  handle(req: IncomingMessage, res: ServerResponse): void;
  close(): Promise<void>;
}

export function createQueueBoard(redis: Redis, prefix: string, names: readonly string[], opts: { readonly readOnly: boolean }): QueueBoard {
  const queues = names.map((name) => {
    const q = new Queue(name, { connection: redis, prefix });
    q.on('error', errorsLoggedByConnectionOwner);
    return q;
  });
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly, allowRetries: !opts.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'vmbridge queues' } },
  });
  const app = express();
  app.disable('x-powered-by');
  // The adapter's router is typed loosely by its package; it is an Express router.
  app.use(QUEUES_PATH, serverAdapter.getRouter() as express.Router);
  return {
    handle(req, res) {
      app(req, res);
    },
    async close() {
      await Promise.all(queues.map((q) => q.close()));
    },
  };
}
