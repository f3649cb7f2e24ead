import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { kindOfDriver, parseOdbcIni, urlFromDsn } from '../../src/store/odbc/dsn-hints.js';

const cls = { dsn: 'Asterisk-VM', username: 'ast@x', password: 'p:w/d#1', file: '/etc/asterisk/res_odbc.conf', line: 3 };

describe('ODBC URL from res_odbc.conf and odbc.ini', () => {
  it('reads odbc.ini as unixODBC does: sections and keys without case, ; and # comments', () => {
    const ini = parseOdbcIni('# top\n[asterisk-vm]\n; note\nDriver = PostgreSQL Unicode\n SERVERNAME=db.example\nPort = 5433\nDatabase = ast\n\n[other]\nDriver=MariaDB\n');
    assert.deepEqual([...ini.keys()], ['asterisk-vm', 'other']);
    assert.equal(ini.get('asterisk-vm')?.get('servername'), 'db.example');
    assert.equal(urlFromDsn(cls, 'asterisk', ini, '/etc/odbc.ini'), 'postgres://ast%40x:p%3Aw%2Fd%231@db.example:5433/ast');
  });

  it('the driver names the database; user and password from odbc.ini when res_odbc.conf has none; IPv6 hosts bracketed', () => {
    assert.equal(kindOfDriver('MySQL ODBC 8.0 Unicode Driver'), 'mysql');
    assert.equal(kindOfDriver('/usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so'), 'mysql');
    assert.equal(kindOfDriver('SQLite3'), undefined);
    assert.equal(kindOfDriver('MariaDB Unicode'), 'mysql');
    assert.equal(kindOfDriver('psqlodbcw.so'), 'postgres');
    const ini = parseOdbcIni('[asterisk-vm]\nDriver = MariaDB\nServer = ::1\nDatabase = asterisk\nUser = vm\nPassword = secret\n');
    assert.equal(urlFromDsn({ dsn: 'asterisk-vm', file: 'f', line: 1 }, 'asterisk', ini, 'odbc.ini'), 'mysql://vm:secret@[::1]/asterisk');
  });

  it('refuses what it cannot use, naming the file', () => {
    const refuse = (text: string, c: typeof cls | { file: string; line: number } = cls, key = 'spool.odbc.urlFile', re: RegExp) => {
      assert.throws(() => urlFromDsn(c, 'asterisk', parseOdbcIni(text), '/etc/odbc.ini'), (err: unknown) => err instanceof ConfigError && err.key === key && re.test(err.message) && !err.message.includes('p:w/d#1'));
    };
    refuse('[x]\nDriver=PostgreSQL\n', cls, 'spool.odbc.odbcIni', /"Asterisk-VM" of res_odbc.conf class asterisk is not a section of \/etc\/odbc.ini/);
    refuse('[asterisk-vm]\nDriver = SQLite3\nDatabase = a\n', cls, 'spool.odbc.urlFile', /Driver "SQLite3" is neither PostgreSQL nor MariaDB\/MySQL/);
    refuse('[asterisk-vm]\nDriver = PostgreSQL\n', cls, 'spool.odbc.urlFile', /has no Database =/);
    refuse('[asterisk-vm]\nDriver = PostgreSQL\nDatabase = a\nPort = 54x\n', cls, 'spool.odbc.urlFile', /Port "54x" is not a port number/);
    refuse('', { file: '/etc/asterisk/res_odbc.conf', line: 3 }, 'spool.odbc.urlFile', /\/etc\/asterisk\/res_odbc.conf:3 \[asterisk\]\) has no dsn =>/);
  });
});
