import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { settingsSchema } from '../../src/config/schema.js';
import { fdBudget, fdBudgetProblem, parseOpenFilesLimit } from '../../src/fd-budget.js';

const ROOT = resolve(import.meta.dirname, '../..');
const settings = (imap: Record<string, unknown> = {}) => settingsSchema.parse({ imap: { host: 'mail.example.com', ...imap } });

describe('the open-file budget', () => {
  it('reads Max open files from /proc/<pid>/limits', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n';
    assert.deepEqual(parseOpenFilesLimit(text), { soft: 1024, hard: 524288 });
    assert.deepEqual(parseOpenFilesLimit('Max open files            256                  unlimited            files\n'), { soft: 256, hard: Number.POSITIVE_INFINITY });
    assert.equal(parseOpenFilesLimit('no such line'), undefined);
  });

  it('counts IMAP, IDLE, Redis, targets and AMI, and says what to raise', () => {
    const b = fdBudget(settings({ maxConnections: 900, idle: { maxAccounts: 500 } }));
    assert.ok(b.total >= 1400, String(b.total));
    assert.equal(fdBudgetProblem(b, { soft: 1_000_000, hard: 1_000_000 }), undefined);
    const soft = fdBudgetProblem(b, { soft: 1024, hard: 524288 });
    assert.match(soft ?? '', /open-file limit \(1024\) is below the \d+ descriptors.*imap\.maxConnections 900.*imap\.idle\.maxAccounts 500.*LimitNOFILE=\d+ in the systemd unit, or ulimit -n \d+/);
    const hard = fdBudgetProblem(b, { soft: 1024, hard: 1024 });
    assert.match(hard ?? '', /raise the hard limit too.*or lower imap\.maxConnections/);
    assert.equal(fdBudgetProblem(fdBudget(settings()), { soft: 1024, hard: 1024 }), undefined, 'the defaults fit the usual 1024');
  });

  it('finds a real limit that is too low (ulimit -n in a child process)', async () => {
    const script = "import('./src/fd-budget.ts').then(async (m) => { const { settingsSchema } = await import('./src/config/schema.ts'); console.log(await m.ownFdBudgetProblem(settingsSchema.parse({ imap: { host: 'x' } })) ?? 'fits'); })";
    // Node lifts its soft limit to the hard one as it starts, so the hard limit is what counts.
    const run = (n: number) => promisify(execFile)('bash', ['-c', `ulimit -n ${n} && exec "${process.execPath}" --import tsx -e "$0"`, script], { cwd: ROOT });
    assert.match((await run(200)).stdout, /open-file limit \(200\) is below .*raise the hard limit too/);
    assert.match((await run(1024)).stdout, /^fits/);
  });
});
