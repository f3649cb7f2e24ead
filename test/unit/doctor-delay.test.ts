import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lampDelayResults, type DelayFacts } from '../../src/cli/doctor/delay.js';

const base: DelayFacts = { server: 'mail:993', accounts: 5000, idleMax: 100, pushEnabled: false, pushAgeSeconds: undefined, sweepSeconds: 300 };
const worst = (f: Partial<DelayFacts>) => lampDelayResults({ ...base, ...f }).at(-1)?.data;

describe('doctor: email action to lamp', () => {
  it('push that arrives covers every account', () => {
    assert.deepEqual(worst({ pushEnabled: true, pushAgeSeconds: 12 }), { worstSeconds: 1, by: 'push', accounts: 5000 });
  });

  it('push configured but never seen counts for nothing, and says so', () => {
    const r = lampDelayResults({ ...base, pushEnabled: true });
    assert.equal(r[0]?.status, 'warn');
    assert.match(r[0]?.message ?? '', /no POST has arrived/);
    assert.deepEqual(r.at(-1)?.data, { worstSeconds: 300, by: 'sweep', accounts: 4900 });
  });

  it('IDLE for all when they fit; the sweep period for the others when they do not; nothing at all without a sweep', () => {
    assert.deepEqual(worst({ accounts: 80 }), { worstSeconds: 1, by: 'idle', accounts: 80 });
    const over = lampDelayResults(base);
    assert.match(over[0]?.message ?? '', /^IDLE: 100 of 5000 accounts/);
    assert.match(over.at(-1)?.message ?? '', /other 4900 accounts wait for the sweep: up to 300 s/);
    assert.deepEqual(worst({ sweepSeconds: 0 }), { worstSeconds: null, by: 'none', accounts: 4900 });
    assert.deepEqual(worst({ idleMax: 0, sweepSeconds: 60 }), { worstSeconds: 60, by: 'sweep', accounts: 5000 });
  });
});
