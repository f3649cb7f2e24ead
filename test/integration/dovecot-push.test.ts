/**
 * The Dovecot side of push notifications, on its own: a private Dovecot loads
 * config/dovecot/vmbridge-push.lua (push_notification, Lua driver), and a small HTTP receiver on
 * 127.0.0.1 stands in for vmbridge's POST /dovecot-push. An imapflow session is the mail client.
 *
 *  - a STORE is one POST (the body shape vmbridge parses, the bearer token) that arrives before
 *    the client's OK;
 *  - MOVE and UID EXPUNGE name the mailbox they expunge from; an APPEND, and a STORE that clears
 *    nothing, send nothing;
 *  - mailbox names with a quote, a backslash and UTF-8 arrive as valid JSON, byte for byte;
 *  - more than 100 events in one transaction: the first 100 and "truncated": true;
 *  - an endpoint that answers 500, never answers, or is gone costs one failed POST, then the
 *    session sends nothing for 30 s (one warning in Dovecot's log, no token), then sends again.
 *
 * Every test uses its own user (a fresh mailbox), and tests run in order: the last one stops the
 * receiver.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { MailClient } from '../support/mail-client.js';
import { freePort } from '../support/ports.js';
import { sleep } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'push-token-5f2a9c1e7b';
const TIMEOUT_MSECS = 1_000;
/** The script's back-off, in whole seconds of os.time(). */
const BACKOFF_MS = 30_000;
const PATH = '/dovecot-push';
const USERS = ['pa', 'pb', 'pc', 'pd', 'ph', 'pf', 'pg', 'pe'] as const;
const pass = (user: string): string => `pw-${user}`;
const message = (subject: string): string =>
  `From: caller@example.com\r\nTo: box@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@vmbridge.invalid>\r\n\r\nvoicemail\r\n`;

interface PushEvent {
  readonly event: string;
  readonly mailbox?: string;
  readonly uid?: number;
}
interface PushBody {
  readonly user: string;
  readonly events: readonly PushEvent[];
  readonly truncated?: boolean;
}
interface Received {
  /** performance.now() when the whole body was in. */
  readonly at: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
}

type Mode = 'ok' | 'fail500' | 'hang';

interface Receiver {
  readonly port: number;
  readonly received: Received[];
  mode: Mode;
  close(): Promise<void>;
}

/** Stands in for vmbridge's endpoint; records every request, answers as `mode` says. */
async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const rx = { mode: 'ok' as Mode };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ at: performance.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks) });
      if (rx.mode === 'hang') {
        hanging.push(res);
      } else if (rx.mode === 'fail500') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('down for maintenance\n');
      } else {
        res.writeHead(204);
        res.end();
      }
    });
  });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 5) continue;
      throw err;
    }
    let closed = false;
    return {
      port,
      received,
      get mode(): Mode {
        return rx.mode;
      },
      set mode(m: Mode) {
        rx.mode = m;
      },
      async close(): Promise<void> {
        if (closed) return;
        closed = true;
        for (const res of hanging) res.destroy();
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await done;
      },
    };
  }
}

/** The body as the endpoint would parse it; invalid UTF-8 or JSON fails the test. */
function bodyOf(r: Received): PushBody {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(r.raw);
  return JSON.parse(text) as PushBody;
}

describe('Dovecot push_notification with config/dovecot/vmbridge-push.lua', { timeout: 60_000 }, () => {
  let rx: Receiver;
  let dovecot: DovecotServer;
  let url: string;
  const clients: MailClient[] = [];

  before(async () => {
    rx = await startReceiver();
    url = `http://127.0.0.1:${rx.port}${PATH}`;
    dovecot = await startDovecot({
      users: USERS.map((user) => ({ user, pass: pass(user) })),
      push: { url, token: TOKEN, timeoutMsecs: TIMEOUT_MSECS },
    });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await rx?.close();
    await dovecot?.stop();
  });

  const open = async (user: string): Promise<MailClient> => {
    const c = await MailClient.open(dovecot.port, user, pass(user));
    clients.push(c);
    return c;
  };
  /** Requests of `user` from index `from` on. */
  const postsOf = (user: string, from = 0): Received[] => rx.received.slice(from).filter((r) => bodyOf(r).user === user);
  const eventsOf = (posts: readonly Received[]): PushEvent[] => posts.flatMap((r) => bodyOf(r).events);
  /** Runs `f` and returns when it resolved (performance.now()) and how long it took. */
  const timed = async (f: () => Promise<unknown>): Promise<{ done: number; ms: number }> => {
    const start = performance.now();
    await f();
    const done = performance.now();
    return { done, ms: done - start };
  };
  const pushWarnings = async (user: string): Promise<string[]> =>
    (await readFile(dovecot.logPath, 'utf8')).split('\n').filter((l) => l.includes(`imap(${user})`) && l.includes('vmbridge-push:'));

  it('a STORE \\Seen is one POST with the user, FlagsSet INBOX and the uid, and the bearer token, before the OK', async (t) => {
    const c = await open('pa');
    const appended = await c.client.append('INBOX', message('a1'));
    assert.ok(appended && typeof appended.uid === 'number', 'APPEND gave a uid');
    const uid = appended.uid;
    await c.client.mailboxOpen('INBOX');

    const mark = rx.received.length;
    const store = await timed(() => c.client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true }));
    const posts = rx.received.slice(mark);
    assert.equal(posts.length, 1, `one POST for one STORE: ${posts.map((p) => p.raw.toString()).join(' | ')}`);
    const post = posts[0]!;
    assert.equal(post.method, 'POST');
    assert.equal(post.url, PATH);
    assert.equal(post.headers['content-type'], 'application/json');
    assert.equal(post.headers.authorization, `Bearer ${TOKEN}`);
    // The exact bytes: Dovecot reports \Seen as FlagsSet and MessageRead, in that order.
    const expected = { user: 'pa', events: [{ event: 'FlagsSet', mailbox: 'INBOX', uid }, { event: 'MessageRead', mailbox: 'INBOX', uid }] };
    assert.equal(post.raw.toString('utf8'), JSON.stringify(expected));
    assert.ok(post.at < store.done, `the POST (${post.at.toFixed(1)}) arrived before the STORE's OK (${store.done.toFixed(1)})`);
    t.diagnostic(`POST arrived ${(store.done - post.at).toFixed(1)} ms before the OK; STORE took ${store.ms.toFixed(1)} ms`);
  });

  it('MOVE INBOX -> Work and UID EXPUNGE send events naming those mailboxes', async () => {
    const c = await open('pb');
    await c.client.mailboxCreate('Work');
    const appendMark = rx.received.length;
    const a1 = await c.client.append('INBOX', message('b1'));
    const a2 = await c.client.append('INBOX', message('b2'));
    assert.ok(a1 && a2 && a1.uid !== undefined && a2.uid !== undefined);
    // New mail is no mail-client change to a voicemail: APPENDs send nothing.
    await sleep(200);
    assert.deepEqual(postsOf('pb', appendMark).map((p) => p.raw.toString('utf8')), []);
    await c.client.mailboxOpen('INBOX');

    let mark = rx.received.length;
    const moved = await c.client.messageMove(String(a1.uid), 'Work', { uid: true });
    assert.ok(moved);
    const newUid = moved.uidMap?.get(a1.uid);
    assert.equal(typeof newUid, 'number', 'COPYUID gave the new uid');
    // The copy into Work is an append, which is not sent; the expunge from INBOX is.
    const moveEvents = eventsOf(postsOf('pb', mark));
    assert.deepEqual(moveEvents, [{ event: 'MessageExpunge', mailbox: 'INBOX', uid: a1.uid }]);

    // UID STORE +FLAGS (\Deleted), then UID EXPUNGE (the server has UIDPLUS).
    mark = rx.received.length;
    assert.ok(await c.client.messageDelete(String(a2.uid), { uid: true }));
    const posts = postsOf('pb', mark);
    assert.deepEqual(posts.map((p) => bodyOf(p).events), [
      [{ event: 'FlagsSet', mailbox: 'INBOX', uid: a2.uid }, { event: 'MessageTrash', mailbox: 'INBOX', uid: a2.uid }],
      [{ event: 'MessageExpunge', mailbox: 'INBOX', uid: a2.uid }],
    ]);
  });

  it('a STORE that clears nothing sends no FlagsClear (and one that clears \\Seen does)', async () => {
    const c = await open('pc');
    const a = await c.client.append('INBOX', message('c1'), ['\\Seen']);
    assert.ok(a && a.uid !== undefined);
    await c.client.mailboxOpen('INBOX');

    // Dovecot reports an empty FlagsClear next to every FlagsSet; the script leaves it out.
    let mark = rx.received.length;
    await c.client.messageFlagsAdd(String(a.uid), ['\\Flagged'], { uid: true });
    assert.deepEqual(eventsOf(postsOf('pc', mark)), [{ event: 'FlagsSet', mailbox: 'INBOX', uid: a.uid }]);

    // Removing a flag the message does not have changes nothing: no POST at all.
    mark = rx.received.length;
    await c.client.messageFlagsRemove(String(a.uid), ['\\Draft'], { uid: true });
    // The POST is synchronous: anything sent has arrived by the OK. A moment more, all the same.
    await sleep(200);
    assert.deepEqual(postsOf('pc', mark).map((p) => p.raw.toString('utf8')), []);

    mark = rx.received.length;
    await c.client.messageFlagsRemove(String(a.uid), ['\\Seen'], { uid: true });
    assert.deepEqual(eventsOf(postsOf('pc', mark)), [{ event: 'FlagsClear', mailbox: 'INBOX', uid: a.uid }]);
  });

  it('a mailbox name with a quote, a backslash and UTF-8 arrives as valid JSON with that exact name', async () => {
    const c = await open('pd');
    const name = 'Anrufe "alt" \\ Grüße 日本';
    const renamed = 'Ablage\\"ü"';
    const mark = rx.received.length;
    await c.client.mailboxCreate(name);
    const a = await c.client.append(name, message('d1'));
    assert.ok(a && a.uid !== undefined);
    await c.client.mailboxRename(name, renamed);
    await c.client.mailboxDelete(renamed);
    const posts = postsOf('pd', mark);
    assert.deepEqual(eventsOf(posts), [
      { event: 'MailboxCreate', mailbox: name },
      { event: 'MailboxRename', mailbox: renamed },
      { event: 'MessageExpunge', mailbox: renamed, uid: a.uid },
      { event: 'MailboxDelete', mailbox: renamed },
    ]);
    // UTF-8 goes as it is, not as \u escapes.
    assert.ok(posts[0]!.raw.includes(Buffer.from('Grüße 日本', 'utf8')), posts[0]!.raw.toString('utf8'));
  });

  it('more than 100 events in one transaction: the first 100 and "truncated": true', async () => {
    const c = await open('ph');
    const uids: number[] = [];
    for (let i = 0; i < 105; i++) {
      const a = await c.client.append('INBOX', message(`h${i}`));
      assert.ok(a && a.uid !== undefined);
      uids.push(a.uid);
    }
    await c.client.mailboxOpen('INBOX');
    const mark = rx.received.length;
    await c.client.messageFlagsAdd('1:*', ['\\Flagged'], { uid: true });
    const posts = postsOf('ph', mark);
    assert.equal(posts.length, 1);
    const body = bodyOf(posts[0]!);
    assert.equal(body.truncated, true);
    assert.equal(body.events.length, 100);
    // Dovecot does not report them in uid order.
    const all = new Set(uids);
    const seen = new Set<number>();
    for (const e of body.events) {
      assert.ok(e.event === 'FlagsSet' && e.mailbox === 'INBOX' && e.uid !== undefined && all.has(e.uid) && !seen.has(e.uid), JSON.stringify(e));
      seen.add(e.uid);
    }
  });

  /**
   * One session against a failing endpoint: a message appended while the endpoint is fine, then
   * `fail()`, then 11 STOREs that each change a flag, then `heal()`. Returns the STOREs' durations
   * and the POSTs that reached the receiver meanwhile.
   */
  const storesAgainstFailure = async (user: string, fail: () => Promise<void>, heal: () => void): Promise<{ c: MailClient; uid: number; ms: number[]; posts: Received[] }> => {
    const c = await open(user);
    const a = await c.client.append('INBOX', message(`${user}1`));
    assert.ok(a && a.uid !== undefined);
    await c.client.mailboxOpen('INBOX');
    assert.equal(postsOf(user).length, 1, `INBOX's creation sent while the endpoint was fine`);
    await fail();
    try {
      return { c, uid: a.uid, ...(await storesOn(c, user, a.uid)) };
    } finally {
      heal();
    }
  };
  const setMode = (m: Mode) => async (): Promise<void> => {
    rx.mode = m;
  };
  const healthy = (): void => {
    rx.mode = 'ok';
  };
  const storesOn = async (c: MailClient, user: string, uid: number): Promise<{ ms: number[]; posts: Received[] }> => {
    const mark = rx.received.length;
    const ms: number[] = [];
    for (let i = 0; i < 11; i++) {
      const store = await timed(() =>
        i % 2 === 0 ? c.client.messageFlagsAdd(String(uid), ['\\Flagged'], { uid: true }) : c.client.messageFlagsRemove(String(uid), ['\\Flagged'], { uid: true }),
      );
      ms.push(store.ms);
    }
    return { ms, posts: rx.received.slice(mark).filter((r) => bodyOf(r).user === user) };
  };
  const assertOneWarning = async (user: string, why: RegExp): Promise<string> => {
    const lines = await waitFor(`the push warning of ${user} in Dovecot's log`, async () => {
      const l = await pushWarnings(user);
      return l.length > 0 ? l : undefined;
    });
    // The log process writes a moment later: a second warning would be there by now.
    await sleep(300);
    const all = await pushWarnings(user);
    assert.equal(all.length, 1, all.join('\n'));
    const line = lines[0]!;
    assert.ok(line.includes('Warning:') && line.includes(`POST ${url} failed`) && why.test(line), line);
    assert.ok(!(await readFile(dovecot.logPath, 'utf8')).includes(TOKEN), "the token is not in Dovecot's log");
    return line;
  };

  it('an endpoint answering 500: one POST, one warning, nothing for 30 s, then POSTs again', async (t) => {
    const session = await storesAgainstFailure('pf', setMode('fail500'), healthy);
    const failedAt = Date.now();
    // Durations are reported, not asserted (shared machines): the back-off shows in the one POST
    // and the one warning; without it every STORE would POST and log again.
    assert.equal(session.posts.length, 1, 'only the first STORE tried');
    t.diagnostic(`STOREs against a 500: ${session.ms.map((x) => x.toFixed(1)).join(', ')} ms`);
    t.diagnostic(await assertOneWarning('pf', /status 500/));

    // Still quiet with the endpoint healthy again, until the back-off has run out.
    const quiet = await storesOn(session.c, 'pf', session.uid);
    assert.equal(quiet.posts.length, 0);
    await sleep(failedAt + BACKOFF_MS + 1_000 - Date.now());
    const mark = rx.received.length;
    await session.c.client.messageFlagsAdd(String(session.uid), ['\\Answered'], { uid: true });
    assert.deepEqual(eventsOf(postsOf('pf', mark)), [{ event: 'FlagsSet', mailbox: 'INBOX', uid: session.uid }]);
  });

  it('an endpoint that never answers: only the first STORE tries (and waits the timeout), one warning', async (t) => {
    const r = await storesAgainstFailure('pg', setMode('hang'), healthy);
    t.diagnostic(`STOREs against a silent endpoint: ${r.ms.map((x) => x.toFixed(1)).join(', ')} ms`);
    assert.equal(r.posts.length, 1, 'only the first STORE tried');
    // Statuses from 9000 are the Lua HTTP client's own; here its request timeout.
    t.diagnostic(await assertOneWarning('pg', /status 9\d{3}: [^)]*timeout/i));
  });

  it('the endpoint gone (port closed): one failed connect, then quiet; one warning without the token', async (t) => {
    const r = await storesAgainstFailure('pe', () => rx.close(), () => undefined);
    t.diagnostic(`STOREs with the port closed: ${r.ms.map((x) => x.toFixed(1)).join(', ')} ms`);
    t.diagnostic(await assertOneWarning('pe', /Connection refused/));
  });
});
