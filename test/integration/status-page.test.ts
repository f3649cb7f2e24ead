/**
 * The status page and the queue view of a running installation, looked at in a real headless
 * Chromium: the page loads and lists every mailbox with its store and IMAP counts, lamp counts,
 * last reconcile, quota use and a change-to-lamp chart; it refreshes by itself when a voicemail
 * arrives; owner names stay text; nothing is shown without the login; the queue view (Bull Board)
 * shows the queues and refuses changes while read-only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { startBrowser } from '../support/browser.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const PASSWORD = 'status-page-secret-1';
const OWNER_WITH_MARKUP = '<b>Ann</b> & "Bo"';

describe('status page and queue view in a browser', { timeout: 180_000 }, () => {
  let h: Harness;
  let port: number;
  let phone: AmiTestServer;
  let phoneSpool: string;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const base = (): string => `http://127.0.0.1:${port}`;

  before(async () => {
    port = await freePort();
    phoneSpool = await mkdtemp(join(tmpdir(), 'vmb-status-ami-'));
    phone = await startAmiServer({ spoolDir: phoneSpool, profile: 'mwiext' });
    h = await startHarness({
      boxes: [{ mailbox: '5000', fullName: OWNER_WITH_MARKUP, quotaRule: '*:messages=10' }, { mailbox: '5001' }, { mailbox: '5002' }],
      settings: (b) => ({
        ...b,
        http: { host: '127.0.0.1', port, status: { enabled: true, password: PASSWORD, refreshSeconds: 1 } },
        mwi: { targets: [{ name: 'phone', kind: 'ami-mwiupdate', host: '127.0.0.1', port: phone.port, username: 'bridge', secret: 'bridge' }], retrySeconds: 1, retryMaxSeconds: 2 },
      }),
    });
    await leaveVoicemail(h.spoolDir, { context: 'default', mailbox: '5000' }, { callerid: '"Caller" <5551000>', duration: 2 });
    await h.startService();
    browser = await startBrowser();
    ctx = await browser.newContext({ httpCredentials: { username: 'admin', password: PASSWORD } });
    page = await ctx.newPage();
  });
  after(async () => {
    await ctx?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await h?.stop();
    await phone?.close().catch(() => undefined);
    if (phoneSpool) await rm(phoneSpool, { recursive: true, force: true });
  });

  const cell = (mailbox: string, column: number): Promise<string> =>
    page.locator(`tr[data-mailbox="${mailbox}"] td:nth-child(${column})`).innerText();

  it('loads with the login and lists every mailbox, with counts, quota and the lamp chart', async () => {
    const res = await page.goto(`${base()}/status`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'nonce-/);
    // The first voicemail has been appended, its quota read and its lamp lit: the page shows all three.
    await waitFor('the first voicemail in the page', async () => {
      await page.reload();
      await page.waitForSelector('tr[data-mailbox="5000@default"]');
      const ok = (await cell('5000@default', 5)) === '1' && (await cell('5000@default', 6)) === '1' && (await page.locator('.chart[data-target="phone"] circle').count()) > 0 && (await cell('5000@default', 11)).includes('%');
      return ok || undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const listed = await page.locator('#rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-mailbox')));
    assert.deepEqual([...listed].sort(), ['5000@default', '5001@default', '5002@default']);
    assert.equal(await cell('5000@default', 4), 'ok');
    assert.equal(await cell('5000@default', 7), '1', 'new');
    assert.equal(await cell('5000@default', 8), '0', 'old');
    assert.match(await cell('5000@default', 9), /s ago|min ago/);
    // One message of ten (Dovecot's messages rule): 10 %.
    assert.equal(await cell('5000@default', 11), '10 % MESSAGE');
    // The owner's name is text, not markup.
    assert.equal(await cell('5000@default', 2), OWNER_WITH_MARKUP);
    assert.equal(await page.locator('#rows b').count(), 0);
    assert.match(await page.locator('.chart[data-target="phone"]').innerText(), /^phone: p50 \d+ ms, p95 \d+ ms, max \d+ ms \(\d+ changes?\)/);
    assert.match(await page.locator('#summary').innerText(), /3 mailboxes/);
  });

  it('refreshes by itself: a new voicemail shows up without reloading', async () => {
    await page.goto(`${base()}/status`);
    await page.waitForSelector('tr[data-mailbox="5001@default"]');
    // Read through locators: the page's Content-Security-Policy refuses script handed in as text.
    const generatedAt = (): Promise<string | null> => page.locator('body').getAttribute('data-generated-at');
    const firstAt = await generatedAt();
    await leaveVoicemail(h.spoolDir, { context: 'default', mailbox: '5001' }, { callerid: '"Other" <5552000>', duration: 1 });
    // No reload here: only the page's own refresh can bring the new figures.
    await waitFor('the new voicemail in the open page', async () => ((await cell('5001@default', 5)) === '1' && (await cell('5001@default', 6)) === '1') || undefined, { timeoutMs: 30_000, intervalMs: 300 });
    assert.notEqual(await generatedAt(), firstAt);
    assert.equal(await cell('5001@default', 7), '1');
  });

  it('refuses without the login, with a wrong password and with a wrong user', async () => {
    const anon = await browser.newContext();
    try {
      const p = await anon.newPage();
      for (const path of ['/status', '/status.json', '/queues/']) {
        // Chromium without a login to offer gives up on the challenge: the page does not load.
        await assert.rejects(p.goto(`${base()}${path}`), /ERR_INVALID_AUTH_CREDENTIALS/, path);
        const res = await anon.request.get(`${base()}${path}`);
        assert.equal(res.status(), 401, path);
        assert.match(res.headers()['www-authenticate'] ?? '', /^Basic realm="vmbridge"/);
        assert.doesNotMatch(await res.text(), /5000@default/);
      }
    } finally {
      await anon.close();
    }
    const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    assert.equal((await fetch(`${base()}/status.json`, { headers: { authorization: basic('admin', 'wrong') } })).status, 401);
    assert.equal((await fetch(`${base()}/status.json`, { headers: { authorization: basic('root', PASSWORD) } })).status, 401);
    const bearer = await fetch(`${base()}/status.json`, { headers: { authorization: `Bearer ${PASSWORD}` } });
    assert.equal(bearer.status, 200);
    const view = (await bearer.json()) as { totals: { mailboxes: number } };
    assert.equal(view.totals.mailboxes, 3);
  });

  it('the queue view shows the queues and, read-only, refuses to pause one', async () => {
    const res = await page.goto(`${base()}/queues/`);
    assert.equal(res?.status(), 200);
    await page.getByText('mwi-phone', { exact: false }).first().waitFor({ timeout: 30_000 });
    assert.ok((await page.getByText('reconcile', { exact: false }).count()) > 0);
    const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    const pause = await fetch(`${base()}/queues/api/queues/reconcile/pause`, { method: 'PUT', headers: { authorization: auth } });
    assert.equal(pause.status, 405);
    const list = await fetch(`${base()}/queues/api/queues`, { headers: { authorization: auth } });
    assert.equal(list.status, 200);
    const body = (await list.json()) as { queues: { name: string; isPaused: boolean; readOnlyMode: boolean }[] };
    const reconcile = body.queues.find((q) => q.name === 'reconcile');
    assert.ok(reconcile, JSON.stringify(body.queues.map((q) => q.name)));
    assert.equal(reconcile.isPaused, false);
    assert.equal(reconcile.readOnlyMode, true);
  });
});
