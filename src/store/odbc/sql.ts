/**
 * The one thing the ODBC store asks of a database: run a statement with `?` parameters, inside a
 * transaction when asked, and listen for change notices where the server has them. PostgreSQL
 * through `pg` and MariaDB/MySQL through `mysql2`, both pure JavaScript (docs/stores.md says why
 * not unixODBC). Statements are written with `?` placeholders and turned into `$1, $2, ...` for
 * PostgreSQL; values always travel as parameters, never inside the SQL text.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { ConfigError } from '../../errors.js';
import { withoutPassword } from '../../config/url-password.js';

export type Row = Record<string, unknown>;

export interface SqlSession {
  query(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

export interface SqlDatabase extends SqlSession {
  readonly dialect: 'postgres' | 'mysql';
  /** Runs `fn` in one transaction: committed when it returns, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlSession) => Promise<T>): Promise<T>;
  /** PostgreSQL LISTEN on `channel`; undefined where the server has no such notices. */
  listen?(channel: string, onNotice: (payload: string) => void, onError: (err: Error) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** The database URL without its password, for logs and doctor. */
export function redactUrl(url: string): string {
  return withoutPassword(url, '(an unreadable database URL)');
}

/** Opens a pool for `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URLs. */
export function openDatabase(url: string, setting: string): SqlDatabase {
  let scheme: string;
  try {
    scheme = new URL(url).protocol.replace(/:$/, '');
  } catch {
    throw new ConfigError(`${setting}: not a URL (expected postgres://user:password@host:port/database or mysql://...)`, { key: setting });
  }
  if (scheme === 'postgres' || scheme === 'postgresql') return new PostgresDatabase(url);
  if (scheme === 'mysql' || scheme === 'mariadb') return new MysqlDatabase(url.replace(/^mariadb:/, 'mysql:'));
  throw new ConfigError(`${setting}: database scheme ${JSON.stringify(scheme)} is not supported (postgres:// or mysql://)`, { key: setting });
}

/** `?` placeholders to `$n`, outside quoted strings (the store's own statements have none inside). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(private readonly url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 4 });
    this.pool.on('error', () => undefined); // an idle client's error: the next query reconnects
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.pool.query(numbered(sql), [...params])).rows as Row[];
  }

  async transaction<T>(fn: (tx: SqlSession) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn({ query: async (sql, params = []) => (await client.query(numbered(sql), [...params])).rows as Row[] });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async listen(channel: string, onNotice: (payload: string) => void, onError: (err: Error) => void): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
    // A connection of its own, outside the pool: it stays in LISTEN for the store's lifetime.
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => onNotice(msg.payload ?? ''));
    client.on('error', onError);
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    return () => client.end().catch(() => undefined);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

class MysqlDatabase implements SqlDatabase {
  readonly dialect = 'mysql' as const;
  private readonly pool: mysql.Pool;

  constructor(url: string) {
    this.pool = mysql.createPool({ uri: url, connectionLimit: 4, supportBigNumbers: true });
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const [rows] = await this.pool.query(sql, [...params]);
    return Array.isArray(rows) ? (rows as Row[]) : [];
  }

  async transaction<T>(fn: (tx: SqlSession) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      const result = await fn({
        query: async (sql, params = []) => {
          const [rows] = await conn.query(sql, [...params]);
          return Array.isArray(rows) ? (rows as Row[]) : [];
        },
      });
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
