/**
 * ODBC storage with no database URL in vmbridge's settings: the URL comes from the files Asterisk
 * itself uses, res_odbc.conf (the class odbcstorage= names: dsn, username, password) and
 * unixODBC's odbc.ini (the DSN: Driver, Servername/Server, Port, Database). Real PostgreSQL and
 * MariaDB from Debian, the table as Asterisk's schema scripts make it; a wrong DSN is refused
 * naming the file.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { AsteriskOdbc } from '../support/asterisk-odbc.js';
import { startMariadb, startPostgres, type DatabaseServer } from '../support/databases.js';
import { startHarness, type Harness } from '../support/harness.js';
import { wavOf } from '../support/store-contract.js';

const ref: MailboxRef = { context: 'default', mailbox: '1000' };
const TABLE = 'voicemessages';

describe('ODBC storage: the database from res_odbc.conf and odbc.ini', { timeout: 180_000 }, () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  const setUp = async (db: DatabaseServer, driver: string, serverKey: string): Promise<{ h: Harness; odbcIni: string; asterisk: AsteriskOdbc }> => {
    const url = new URL(db.url);
    const h = await startHarness({
      boxes: [{ mailbox: ref.mailbox }],
      confExtra: `[general]\nformat=wav\nodbcstorage=asterisk\nodbctable=${TABLE}\n`,
      settings: (b) => ({ ...b, spool: { ...(b['spool'] as object), odbc: { odbcIni: join(dirname(b['spool'] ? (b['spool'] as { voicemailConf: string }).voicemailConf : '.'), 'odbc.ini'), pollSeconds: 0 } } }),
    });
    stops.push(() => h.stop());
    const confDir = dirname(h.confPath);
    // As an Asterisk site has them: the password in res_odbc.conf, the rest in the DSN.
    await writeFile(join(confDir, 'res_odbc.conf'), ['[asterisk]', 'enabled => yes', 'dsn => asterisk-voicemail', `username => ${decodeURIComponent(url.username)}`, `password => ${db.password}`, 'pre-connect => yes', ''].join('\n'));
    const odbcIni = join(confDir, 'odbc.ini');
    await writeFile(odbcIni, ['; unixODBC DSNs', '[asterisk-voicemail]', `Description = voicemail`, `Driver = ${driver}`, `${serverKey} = ${url.hostname}`, `Port = ${url.port}`, `Database = ${url.pathname.slice(1)}`, ''].join('\n'));
    const asterisk = new AsteriskOdbc({ url: db.url, table: TABLE, spoolDir: h.spoolDir });
    stops.push(() => asterisk.close());
    await asterisk.createTable();
    return { h, odbcIni, asterisk };
  };

  for (const [name, start, driver, serverKey] of [
    ['PostgreSQL (psqlODBC: Servername)', startPostgres, 'PostgreSQL Unicode', 'Servername'],
    ['MariaDB (MariaDB Connector/ODBC: Server)', startMariadb, 'MariaDB Unicode', 'Server'],
  ] as const) {
    it(`${name}: rows are read with no URL set`, async () => {
      const db = await start();
      stops.push(() => db.stop());
      const { h, asterisk } = await setUp(db, driver, serverKey);
      const left = await asterisk.leave(ref, { audio: wavOf('from-dsn'), callerid: '"Caller" <5550100>' });
      const store = await openStore(h.settings);
      try {
        assert.equal(store.kind, 'odbc');
        assert.doesNotMatch(store.location, new RegExp(db.password), 'the location names no password');
        const snap = await store.readMailbox(ref);
        assert.deepEqual(snap.messages.map((m) => [m.id, m.folder]), [[left.msgId, 'INBOX']]);
      } finally {
        await store.close();
      }
    });
  }

  it('a DSN that odbc.ini does not have is refused, naming odbc.ini and the setting', async () => {
    const db = await startPostgres();
    stops.push(() => db.stop());
    const { h, odbcIni } = await setUp(db, 'PostgreSQL Unicode', 'Servername');
    await writeFile(odbcIni, '[another]\nDriver = PostgreSQL Unicode\nDatabase = x\n');
    await assert.rejects(openStore(h.settings), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, 'spool.odbc.odbcIni');
      assert.equal(err.file, odbcIni);
      assert.match(err.message, /"asterisk-voicemail" of res_odbc\.conf class asterisk is not a section of/);
      assert.doesNotMatch(err.message, new RegExp(db.password));
      return true;
    });
  });
});
