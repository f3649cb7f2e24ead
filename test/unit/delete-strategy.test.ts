/**
 * How a deleted voicemail email leaves IMAP, for every setting and every server: the decision is
 * pure, so the whole table is checked here; the integration tests (shared-mailbox) run it for real.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ImapFlow } from 'imapflow';
import { capabilitiesOf, explainCapabilities, serverHas, type ServerCapabilities } from '../../src/imap/capabilities.js';
import { deleteStrategy, strategyWithoutTrash, usesTrash, type DeleteMode, type DeleteStrategy } from '../../src/imap/delete-strategy.js';
import { classifyLoginError } from '../../src/cli/doctor/imap.js';

const servers = {
  both: { uidplus: true, move: true },
  uidplusOnly: { uidplus: true, move: false },
  moveOnly: { uidplus: false, move: true },
  neither: { uidplus: false, move: false },
} as const;

describe('deleteStrategy', () => {
  const table: Record<DeleteMode, Record<keyof typeof servers, DeleteStrategy>> = {
    auto: { both: 'uid-expunge', uidplusOnly: 'uid-expunge', moveOnly: 'move-to-trash', neither: 'flag-deleted' },
    expunge: { both: 'uid-expunge', uidplusOnly: 'uid-expunge', moveOnly: 'flag-deleted', neither: 'flag-deleted' },
    trash: { both: 'move-to-trash', uidplusOnly: 'copy-to-trash', moveOnly: 'move-to-trash', neither: 'flag-deleted' },
  };
  for (const [mode, row] of Object.entries(table) as [DeleteMode, Record<keyof typeof servers, DeleteStrategy>][]) {
    for (const [server, expected] of Object.entries(row) as [keyof typeof servers, DeleteStrategy][]) {
      it(`${mode} on a server with ${server}: ${expected}`, () => {
        assert.equal(deleteStrategy(mode, servers[server]), expected);
      });
    }
  }

  it('never expunges without UIDPLUS, whatever the mode', () => {
    for (const mode of ['auto', 'expunge', 'trash'] as const) {
      for (const caps of [servers.moveOnly, servers.neither]) {
        const s = deleteStrategy(mode, caps);
        assert.ok(s !== 'uid-expunge' && s !== 'copy-to-trash', `${mode}: ${s}`);
      }
    }
  });

  it('where the trash folder cannot be used: UID EXPUNGE or the flag, never a move', () => {
    assert.equal(strategyWithoutTrash(servers.both), 'uid-expunge');
    assert.equal(strategyWithoutTrash(servers.moveOnly), 'flag-deleted');
    assert.equal(usesTrash(strategyWithoutTrash(servers.moveOnly)), false);
  });
});

function fakeClient(capabilities: readonly string[], enabled: readonly string[] = []): ImapFlow {
  return { capabilities: new Map(capabilities.map((c) => [c, true])), enabled: new Set(enabled) } as unknown as ImapFlow;
}

describe('capabilities', () => {
  it('are read from the list, and an IMAP4rev2-only server has UIDPLUS and MOVE built in', () => {
    const rev1 = capabilitiesOf(fakeClient(['IMAP4rev1', 'IDLE', 'MOVE']));
    assert.equal(rev1.uidplus, false);
    assert.equal(rev1.move, true);
    const rev2 = fakeClient(['IMAP4rev2']);
    assert.equal(serverHas(rev2, 'UIDPLUS'), true);
    assert.equal(serverHas(rev2, 'MOVE'), true);
    assert.equal(serverHas(rev2, 'QUOTA'), false);
    // Both offered: rev2 counts only once enabled.
    assert.equal(serverHas(fakeClient(['IMAP4rev1', 'IMAP4rev2']), 'UIDPLUS'), false);
    assert.equal(serverHas(fakeClient(['IMAP4rev1', 'IMAP4rev2'], ['IMAP4REV2']), 'UIDPLUS'), true);
  });

  it('are explained in what vmbridge does because of them', () => {
    const caps: ServerCapabilities = { uidplus: false, move: true, condstore: true, qresync: true, idle: true, notify: false, quota: true, specialUse: true };
    const notes = explainCapabilities(caps, { deleteMode: 'auto', trash: 'Trash', trashSource: 'special-use', sweepSeconds: 300, idleAccounts: 100, idleNotify: true });
    assert.deepEqual(notes.map((n) => n.name), ['IDLE', 'NOTIFY', 'CONDSTORE', 'QRESYNC', 'MOVE', 'UIDPLUS', 'QUOTA', 'SPECIAL-USE']);
    // IDLE and NOTIFY say what is heard and what waits for the sweep, as the settings have it.
    assert.match(notes.find((n) => n.name === 'IDLE')!.consequence, /^used: up to 100 accounts .*the inbox folder only \(Work, Family and Friends at the sweep\); other accounts at the next reconcile .*every 300 s/);
    assert.match(notes.find((n) => n.name === 'NOTIFY')!.consequence, /^not offered: /);
    const withNotify = explainCapabilities({ ...caps, notify: true }, { deleteMode: 'auto', trash: 'Trash', trashSource: 'special-use', sweepSeconds: 300, idleAccounts: 100, idleNotify: true });
    assert.match(withNotify.find((n) => n.name === 'IDLE')!.consequence, /with NOTIFY, every voicemail folder of theirs/);
    assert.match(withNotify.find((n) => n.name === 'NOTIFY')!.consequence, /^used: /);
    const notifyOff = explainCapabilities({ ...caps, notify: true }, { deleteMode: 'auto', trash: 'Trash', trashSource: 'special-use', sweepSeconds: 300, idleAccounts: 100, idleNotify: false });
    assert.match(notifyOff.find((n) => n.name === 'NOTIFY')!.consequence, /^not used \(imap\.idle\.notify is false\)/);
    const idleOff = explainCapabilities({ ...caps, notify: true }, { deleteMode: 'auto', trash: 'Trash', trashSource: 'special-use', sweepSeconds: 300, idleAccounts: 0, idleNotify: true });
    assert.match(idleOff.find((n) => n.name === 'IDLE')!.consequence, /^not used \(imap\.idle\.maxAccounts is 0\)/);
    const uidplus = notes.find((n) => n.name === 'UIDPLUS')!;
    assert.equal(uidplus.level, 'warn');
    assert.equal(uidplus.consequence, 'deleted voicemail emails are moved to "Trash" with UID MOVE (MOVE present); a bare EXPUNGE is never sent');
    const flagged = explainCapabilities({ ...caps, move: false }, { deleteMode: 'auto', trash: 'Trash', trashSource: 'default', sweepSeconds: 0, idleAccounts: 100, idleNotify: true });
    assert.match(flagged.find((n) => n.name === 'UIDPLUS')!.consequence, /only flagged \\Deleted.*\(no MOVE either\); a bare EXPUNGE is never sent$/);
    assert.equal(flagged.find((n) => n.name === 'MOVE')!.level, 'warn');
  });
});

describe('doctor: why a login failed', () => {
  const server = { host: 'mail.example.com', port: 993, requireTls: true };
  it('tells authentication, TLS, refused, timeout and DNS apart', () => {
    assert.equal(classifyLoginError(Object.assign(new Error('Command failed'), { authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED', responseText: 'Authentication failed.' }), server).kind, 'auth');
    assert.equal(classifyLoginError(Object.assign(new Error('Server does not support STARTTLS'), { tlsFailed: true }), server).kind, 'tls');
    assert.equal(classifyLoginError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), server).kind, 'tls');
    assert.equal(classifyLoginError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), server).kind, 'refused');
    assert.equal(classifyLoginError(Object.assign(new Error('Failed to receive greeting'), { code: 'GREETING_TIMEOUT' }), server).kind, 'timeout');
    assert.equal(classifyLoginError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), server).kind, 'dns');
  });
});
