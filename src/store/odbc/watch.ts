/**
 * Hearing that Asterisk added, moved or deleted rows. PostgreSQL: LISTEN on `vmbridge_voicemail`,
 * which the trigger in docs/stores.md fills with the `dir` of every changed row. Everywhere (and
 * as the only way on MariaDB/MySQL): a cheap look every few seconds at one fingerprint per folder
 * (row count and a digest of msgnum:msg_id, no recordings read); a folder whose fingerprint
 * changed names its mailbox. The periodic sweep stays behind both.
 */
import type { Logger } from '../../log.js';
import { mailboxKey, type MailboxRef } from '../../spool/types.js';
import type { StoreWatcher } from '../types.js';
import type { DirLayout } from './rows.js';
import type { SqlDatabase } from './sql.js';

export const NOTIFY_CHANNEL = 'vmbridge_voicemail';

export interface TableWatchOptions {
  readonly db: SqlDatabase;
  readonly table: string;
  readonly layout: DirLayout;
  /** 0: no polling (notices and the sweep only). */
  readonly pollSeconds: number;
  readonly onChange: (ref: MailboxRef) => void;
  readonly log?: Logger;
}

/** The statement that gives each folder's fingerprint, in the database's own functions. */
export function fingerprintSql(db: SqlDatabase, table: string): string {
  return db.dialect === 'postgres'
    ? `SELECT dir, COUNT(*) AS n, md5(string_agg(msgnum::text || ':' || COALESCE(msg_id, ''), ',' ORDER BY msgnum)) AS h FROM ${table} GROUP BY dir`
    : `SELECT dir, COUNT(*) AS n, SUM(CRC32(CONCAT(msgnum, ':', COALESCE(msg_id, '')))) AS h FROM ${table} GROUP BY dir`;
}

export function watchTable(opts: TableWatchOptions): StoreWatcher {
  const { db, layout, log } = opts;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let last: Map<string, string> | undefined;
  let failing = false;

  const fire = (dir: string): void => {
    const where = layout.parse(dir);
    if ('problem' in where) return;
    opts.onChange(where.ref);
  };

  const look = async (): Promise<void> => {
    try {
      const rows = await db.query(fingerprintSql(db, opts.table));
      const now = new Map(rows.map((r) => [String(r['dir']), `${String(r['n'])}/${String(r['h'])}`]));
      if (last) {
        const changed = new Set<string>();
        for (const [dir, fp] of now) if (last.get(dir) !== fp) changed.add(dir);
        for (const dir of last.keys()) if (!now.has(dir)) changed.add(dir);
        const refs = new Map<string, MailboxRef>();
        for (const dir of changed) {
          const where = layout.parse(dir);
          if (!('problem' in where)) refs.set(mailboxKey(where.ref), where.ref);
        }
        for (const ref of refs.values()) opts.onChange(ref);
      }
      last = now;
      if (failing) log?.info({ table: opts.table }, 'voicemail table readable again');
      failing = false;
    } catch (err) {
      if (!failing) log?.warn({ table: opts.table, err: err instanceof Error ? err.message : String(err) }, 'voicemail table cannot be looked at for changes; retried');
      failing = true;
    }
  };

  const schedule = (): void => {
    if (closed || opts.pollSeconds <= 0) return;
    timer = setTimeout(() => {
      void look().finally(schedule);
    }, opts.pollSeconds * 1000);
    timer.unref();
  };

  const ready = (async () => {
    if (db.listen) {
      try {
        unlisten = await db.listen(NOTIFY_CHANNEL, fire, (err) => log?.warn({ err: err.message }, 'voicemail table notices lost; the periodic look goes on'));
      } catch (err) {
        log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot LISTEN for voicemail table notices; the periodic look goes on');
      }
    }
    await look();
    schedule();
  })();

  return {
    ready,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      void unlisten?.();
    },
  };
}
