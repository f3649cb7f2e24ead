/**
 * Two things a server in Cyrus's default setup needs: folder names under the personal namespace
 * prefix ("INBOX.Work"), and the master login as SASL PLAIN with an authorization identity, which
 * must never fall back to a plain LOGIN (that would be the master user's own mailbox). The login
 * is checked against a scripted IMAP server on loopback that offers, or does not offer, AUTH=PLAIN.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { connectImap, imapOptions } from '../../src/imap/connect.js';
import { serverPath } from '../../src/imap/folders.js';

describe('serverPath: folder names under the personal namespace', () => {
  const cyrus = { delimiter: '.', prefix: 'INBOX.' };
  const dovecot = { delimiter: '/', prefix: '' };

  it('adds the prefix where the server has one, and only there', () => {
    assert.equal(serverPath('Work', cyrus), 'INBOX.Work');
    assert.equal(serverPath('Voicemail/Work', cyrus), 'INBOX.Voicemail.Work');
    assert.equal(serverPath('Trash', cyrus), 'INBOX.Trash');
    assert.equal(serverPath('Work', dovecot), 'Work');
    assert.equal(serverPath('Voicemail/Work', dovecot), 'Voicemail/Work');
    assert.equal(serverPath('Voicemail/Work', { delimiter: '.', prefix: '' }), 'Voicemail.Work');
  });

  it('keeps INBOX as INBOX, and a name written with the prefix as it is (INBOX in any case)', () => {
    for (const found of [cyrus, dovecot]) {
      assert.equal(serverPath('INBOX', found), 'INBOX');
      assert.equal(serverPath('inbox', found), 'INBOX');
    }
    assert.equal(serverPath('INBOX/Work', cyrus), 'INBOX.Work');
    assert.equal(serverPath('inbox/Work', cyrus), 'INBOX.Work');
    assert.equal(serverPath('INBOXES', cyrus), 'INBOX.INBOXES', 'a name that merely starts with INBOX gets the prefix');
    assert.equal(serverPath('INBOX/Work', dovecot), 'INBOX/Work');
  });
});

/** A scripted IMAP server: enough of RFC 3501 for imapflow to log in and out. */
interface FakeImap {
  readonly port: number;
  /** Every line a client sent. */
  readonly lines: string[];
  close(): Promise<void>;
}

async function fakeImap(preLoginCaps: string): Promise<FakeImap> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let authenticated = false;
    let pendingAuth: string | undefined;
    let buffer = '';
    socket.write(`* OK [CAPABILITY ${preLoginCaps}] fake ready\r\n`);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        lines.push(line);
        if (pendingAuth !== undefined) {
          const tag = pendingAuth;
          pendingAuth = undefined;
          authenticated = true;
          socket.write(`${tag} OK authenticated\r\n`);
          continue;
        }
        const [tag = '*', verb = ''] = line.split(' ');
        switch (verb.toUpperCase()) {
          case 'CAPABILITY':
            socket.write(`* CAPABILITY ${authenticated ? 'IMAP4rev1 NAMESPACE' : preLoginCaps}\r\n${tag} OK done\r\n`);
            break;
          case 'LOGIN':
            authenticated = true;
            socket.write(`${tag} OK logged in\r\n`);
            break;
          case 'AUTHENTICATE':
            if (line.split(' ').length > 3) {
              authenticated = true;
              socket.write(`${tag} OK authenticated\r\n`);
            } else {
              pendingAuth = tag;
              socket.write('+ \r\n');
            }
            break;
          case 'NAMESPACE':
            socket.write(`* NAMESPACE (("INBOX." ".")) NIL NIL\r\n${tag} OK done\r\n`);
            break;
          case 'LOGOUT':
            socket.write(`* BYE\r\n${tag} OK bye\r\n`);
            socket.end();
            break;
          default:
            socket.write(`${tag} OK done\r\n`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return {
    port: address.port,
    lines,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function settingsFor(port: number, login: Record<string, unknown>): Settings['imap'] {
  return settingsSchema.parse({ imap: { host: '127.0.0.1', port, secure: false, requireTls: false, login } }).imap;
}

const ADMIN = { mode: 'master', masterStyle: 'authzid', masterUser: 'admin', masterPassword: 'admin-pw' };

describe('master login with a SASL authzid (imap.login.masterStyle: authzid)', () => {
  const servers: FakeImap[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('imapOptions: the master credentials with the user as authzid, SASL PLAIN only; separator style unchanged', async () => {
    const options = await imapOptions(settingsFor(143, ADMIN), { user: 'alice' });
    assert.deepEqual(options.auth, { user: 'admin', pass: 'admin-pw', authzid: 'alice', loginMethod: 'AUTH=PLAIN' });
    const dovecot = await imapOptions(settingsFor(143, { ...ADMIN, masterStyle: undefined }), { user: 'alice' });
    assert.deepEqual(dovecot.auth, { user: 'alice*admin', pass: 'admin-pw' });
    assert.equal(dovecot.logger, false);
  });

  it('sends AUTHENTICATE PLAIN with authzid NUL authcid NUL password', async () => {
    const server = await fakeImap('IMAP4rev1 AUTH=PLAIN');
    servers.push(server);
    const client = await connectImap(settingsFor(server.port, ADMIN), { user: 'alice' });
    await client.logout();
    assert.equal(server.lines.some((l) => /^\S+ LOGIN /i.test(l)), false, 'no plain LOGIN');
    const at = server.lines.findIndex((l) => /^\S+ AUTHENTICATE PLAIN$/i.test(l));
    assert.ok(at >= 0, `AUTHENTICATE PLAIN sent: ${server.lines.join(' | ')}`);
    assert.equal(Buffer.from(server.lines[at + 1] ?? '', 'base64').toString('utf8'), 'alice\0admin\0admin-pw');
  });

  it('refuses a server without SASL PLAIN: the plain LOGIN session (the master user\'s own mailbox) is logged out, nothing else is sent', async () => {
    const server = await fakeImap('IMAP4rev1');
    servers.push(server);
    await assert.rejects(connectImap(settingsFor(server.port, ADMIN), { user: 'alice' }), /offers no SASL PLAIN/);
    const login = server.lines.findIndex((l) => /^\S+ LOGIN /i.test(l));
    assert.ok(login >= 0, 'imapflow fell back to LOGIN, which is what the check must catch');
    const after = server.lines.slice(login + 1).map((l) => l.split(' ')[1]?.toUpperCase());
    assert.ok(after.includes('LOGOUT'), `logged out: ${after.join(' ')}`);
    for (const verb of after) assert.ok(['CAPABILITY', 'NAMESPACE', 'ID', 'ENABLE', 'COMPRESS', 'LOGOUT'].includes(verb ?? ''), `only session set-up, then LOGOUT: ${verb}`);
  });
});
