/**
 * The database URL of Asterisk's ODBC voicemail storage, worked out from the files Asterisk itself
 * uses when vmbridge's own settings do not give it: voicemail.conf `odbcstorage=<class>` names a
 * class of res_odbc.conf (`dsn =>`, `username =>`, `password =>`), whose DSN is a section of
 * unixODBC's odbc.ini (`Driver`, `Servername`/`Server`, `Port`, `Database`, and a user and
 * password where res_odbc.conf has none). The driver's name says which database it is; the
 * parsing and the URL are pure, the two readers at the end are the only file access.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../errors.js';
import { loadConfigFile } from '../../config/voicemail-conf.js';

export interface ResOdbcClass {
  readonly dsn?: string;
  readonly username?: string;
  readonly password?: string;
  readonly file: string;
  readonly line: number;
}

export type IniSections = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** odbc.ini as unixODBC reads it: `[name]`, `key = value`, `;` and `#` comment lines; keys without case. */
export function parseOdbcIni(text: string): IniSections {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      current = new Map();
      sections.set(head[1]!.trim().toLowerCase(), current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !current) continue;
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

export type DsnKind = 'postgres' | 'mysql';

export function kindOfDriver(driver: string): DsnKind | undefined {
  if (/postgres|psql/i.test(driver)) return 'postgres';
  // A name from odbcinst.ini, or the library itself (libmaodbc.so, libmyodbc8w.so, psqlodbcw.so).
  if (/maria|mysql|maodbc|myodbc/i.test(driver)) return 'mysql';
  return undefined;
}

/** The URL, or a ConfigError naming the file and what is missing there. */
export function urlFromDsn(cls: ResOdbcClass, className: string, ini: IniSections, iniFile: string): string {
  const at = `${cls.file}:${cls.line} [${className}]`;
  if (!cls.dsn) throw new ConfigError(`res_odbc.conf class ${className} (${at}) has no dsn =>; set spool.odbc.urlFile instead`, { key: 'spool.odbc.urlFile', file: cls.file });
  const section = ini.get(cls.dsn.toLowerCase());
  if (!section) throw new ConfigError(`the DSN ${JSON.stringify(cls.dsn)} of res_odbc.conf class ${className} is not a section of ${iniFile}; set spool.odbc.odbcIni to the odbc.ini that has it, or spool.odbc.urlFile`, { key: 'spool.odbc.odbcIni', file: iniFile });
  const driver = section.get('driver') ?? '';
  const kind = kindOfDriver(driver);
  if (!kind) throw new ConfigError(`${iniFile} [${cls.dsn}]: Driver ${JSON.stringify(driver)} is neither PostgreSQL nor MariaDB/MySQL, the databases vmbridge reads; set spool.odbc.urlFile`, { key: 'spool.odbc.urlFile', file: iniFile });
  const host = section.get('servername') ?? section.get('server') ?? 'localhost';
  const port = section.get('port');
  const database = section.get('database');
  if (!database) throw new ConfigError(`${iniFile} [${cls.dsn}] has no Database =; set it there, or spool.odbc.urlFile`, { key: 'spool.odbc.urlFile', file: iniFile });
  const user = cls.username ?? section.get('username') ?? section.get('user') ?? section.get('uid');
  const password = cls.password ?? section.get('password') ?? section.get('pwd');
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new ConfigError(`${iniFile} [${cls.dsn}]: Port ${JSON.stringify(port)} is not a port number`, { key: 'spool.odbc.urlFile', file: iniFile });
  const auth = user ? `${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@` : '';
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${kind === 'postgres' ? 'postgres' : 'mysql'}://${auth}${shownHost}${port ? `:${port}` : ''}/${encodeURIComponent(database)}`;
}

/** res_odbc.conf's class, by name (Asterisk compares class names without case). */
export async function readResOdbcClass(path: string, className: string): Promise<ResOdbcClass | undefined> {
  const loaded = await loadConfigFile(path);
  const section = loaded.sections.find((s) => !s.template && s.name.toLowerCase() === className.toLowerCase());
  if (!section) return undefined;
  const get = (key: string): string | undefined => section.entries.find((e) => e.name.toLowerCase() === key)?.value;
  const dsn = get('dsn');
  const username = get('username');
  const password = get('password');
  return { file: section.file, line: section.line, ...(dsn ? { dsn } : {}), ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** The URL from res_odbc.conf and odbc.ini; a ConfigError names the file at fault. */
export async function urlFromAsteriskFiles(resOdbcConf: string, odbcIni: string, className: string): Promise<string> {
  const cls = await readResOdbcClass(resOdbcConf, className);
  if (!cls) throw new ConfigError(`res_odbc.conf (${resOdbcConf}) has no class [${className}], which voicemail.conf odbcstorage= names; set spool.odbc.urlFile`, { key: 'spool.odbc.urlFile', file: resOdbcConf });
  let text: string;
  try {
    text = await readFile(odbcIni, 'utf8');
  } catch (err) {
    throw new ConfigError(`${odbcIni} (unixODBC's DSNs, spool.odbc.odbcIni) cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); set spool.odbc.urlFile instead`, { key: 'spool.odbc.odbcIni', file: odbcIni });
  }
  return urlFromDsn(cls, className, parseOdbcIni(text), odbcIni);
}
