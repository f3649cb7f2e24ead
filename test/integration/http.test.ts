import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('health, readiness and metrics over HTTP', { timeout: 60_000 }, () => {
  let h: Harness;
  let port: number;
  before(async () => {
    port = await freePort();
    h = await startHarness({ boxes: [{ mailbox: '5000' }], settings: (base) => ({ ...base, http: { host: '127.0.0.1', port } }) });
    await h.startService();
  });
  after(async () => {
    await h?.stop();
  });

  it('answers /healthz, /readyz and /metrics; unknown paths are 404', async () => {
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: await res.text() };
    };
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ready\n' });
    assert.equal((await get('/nope')).status, 404);

    await leaveVoicemail(h.spoolDir, { context: 'default', mailbox: '5000' }, { callerid: '"M" <1>', duration: 1 });
    const metrics = await waitFor('an append in the metrics', async () => {
      const m = await get('/metrics');
      return /vmbridge_ops_total\{kind="append",reason="new-on-phone"\} 1\n/.test(m.body) ? m.body : undefined;
    });
    assert.match(metrics, /^vmbridge_reconciles_total [1-9]\d*$/m);
    assert.match(metrics, /^vmbridge_reconcile_failures_total 0$/m);
  });
});
