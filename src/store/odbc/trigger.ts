/**
 * The PostgreSQL trigger that makes Asterisk's row changes heard at once (docs/stores.md): every
 * INSERT, UPDATE and DELETE on the voicemail table sends the row's `dir` on the channel vmbridge
 * LISTENs on. Optional: without it the table is looked at every `store.odbc.pollSeconds`.
 */
import { isPlainIdentifier } from './rows.js';
import { NOTIFY_CHANNEL } from './watch.js';

export function postgresTriggerSql(table: string): string {
  if (!isPlainIdentifier(table)) throw new Error(`not a plain table name: ${table}`);
  return [
    `CREATE OR REPLACE FUNCTION vmbridge_voicemail_notify() RETURNS trigger LANGUAGE plpgsql AS $$`,
    `BEGIN`,
    `  IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('${NOTIFY_CHANNEL}', OLD.dir); END IF;`,
    `  IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('${NOTIFY_CHANNEL}', NEW.dir); END IF;`,
    `  RETURN NULL;`,
    `END $$;`,
    `DROP TRIGGER IF EXISTS vmbridge_voicemail_notify ON ${table};`,
    `CREATE TRIGGER vmbridge_voicemail_notify AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION vmbridge_voicemail_notify();`,
  ].join('\n');
}
