/**
 * How long Asterisk waits for `externnotify = vmbridge notify`, beside the floor: the start-up of
 * a bare `node -e 0` on the same machine, in the same run. Also `--version` and `--help`, which
 * take the same fast path, and `notify --config`, which reads the settings file first.
 *
 * Each command runs `NOTIFY_RUNS` times (BENCH_NOTIFY_RUNS, default 30), the commands taking turns
 * so that the machine's noise falls on all of them alike. Wall time is from spawn to exit. Peak
 * RSS comes from GNU time (`/usr/bin/time -f %M`, the kernel's maxrss of the child) in separate
 * runs, so that time's own start does not count in the wall times.
 *
 * `bench/run.ts` calls measureStartup() with its servers; alone, `node --import tsx bench/notify.ts`
 * starts a private Dovecot and Redis and writes bench/results/notify.json and notify.md. Build
 * first (`npm run build`): what is measured is dist, as installed.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { shortTempDir } from '../test/support/processes.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'dist/src/cli/bin.js');
const RUNS = Number(process.env.BENCH_NOTIFY_RUNS ?? 30);
const RSS_RUNS = 5;
const GNU_TIME = '/usr/bin/time';

export interface Timing { n: number; p50: number; p95: number; max: number }
export interface StartupRow { name: string; wallMs: Timing; peakRssMiB: number | null; exitCode: number }
export interface StartupResult { runs: number; rows: StartupRow[]; notifyP50OverFloor: number; notifyNoServiceP50OverFloor: number; withinTwiceFloor: boolean }

function timing(samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  const round = (x: number): number => Math.round(x * 10) / 10;
  return { n: s.length, p50: round(at(0.5)), p95: round(at(0.95)), max: round(s[s.length - 1] ?? NaN) };
}

function runOnce(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number }> {
  return new Promise((done, fail) => {
    const t = performance.now();
    const child = spawn(process.execPath, [...args], { stdio: 'ignore', env });
    child.once('error', fail);
    child.once('exit', (code) => done({ ms: performance.now() - t, code: code ?? -1 }));
  });
}

/** GNU time's %M: the child's peak resident set in KiB. */
function peakRssKiB(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done, fail) => {
    execFile(GNU_TIME, ['-f', 'maxrss=%M', process.execPath, ...args], { env }, (_err, _out, stderr) => {
      const kib = Number(/maxrss=(\d+)/.exec(stderr)?.[1]);
      if (Number.isFinite(kib)) done(kib);
      else fail(new Error(`${GNU_TIME} gave no maxrss: ${stderr.slice(-300)}`));
    });
  });
}

interface Command { name: string; args: string[]; env: NodeJS.ProcessEnv; rss: boolean }

/** A `vmbridge run` of dist, listening on `socket`, with one mailbox on the given servers. */
async function startService(dir: string, socket: string, redisUrl: string, imapPort: number, voicemailConf: string): Promise<{ child: ChildProcess; configPath: string }> {
  const configPath = join(dir, 'vmbridge-notify.yaml');
  await mkdir(join(dir, 'spool-notify', 'voicemail'), { recursive: true });
  await writeFile(configPath, stringify({
    spool: { dir: join(dir, 'spool-notify'), voicemailConf, watch: false, sweepSeconds: 0 },
    redis: { url: redisUrl, prefix: 'bench-notify' },
    imap: { host: '127.0.0.1', port: imapPort, secure: false, requireTls: false },
    notify: { socket },
    log: { level: 'info' },
    http: { port: 0 },
  }));
  const child = spawn(process.execPath, [BIN, 'run', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((ok, fail) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('vmbridge started')) ok();
    });
    child.once('exit', (code) => fail(new Error(`vmbridge run exited with ${code}:\n${log.slice(-2000)}`)));
  });
  if (!log.includes('externnotify socket listening')) throw new Error(`vmbridge run does not listen on ${socket}:\n${log.slice(-2000)}`);
  return { child, configPath };
}

/**
 * `voicemailConf` must name `mailbox@default` with a login on the IMAP server at `imapPort`; the
 * notify calls queue reconciles of it in the service, as Asterisk's would.
 */
export async function measureStartup(opts: { redisUrl: string; imapPort: number; voicemailConf: string; mailbox: string }): Promise<StartupResult> {
  await access(BIN).catch(() => {
    throw new Error(`${BIN} is missing: run npm run build first`);
  });
  const dir = await shortTempDir('vmb-n');
  const socket = join(dir, 'notify.sock');
  const absent = join(dir, 'absent.sock');
  const service = await startService(dir, socket, opts.redisUrl, opts.imapPort, opts.voicemailConf);
  try {
    const env = { ...process.env, VMBRIDGE_NOTIFY_SOCKET: socket };
    const shape = ['default', opts.mailbox, '1', '0', '0'];
    const commands: Command[] = [
      { name: 'node -e 0 (floor)', args: ['-e', '0'], env, rss: true },
      { name: 'vmbridge --version', args: [BIN, '--version'], env, rss: true },
      { name: 'vmbridge --help', args: [BIN, '--help'], env, rss: false },
      { name: 'vmbridge notify, service running', args: [BIN, 'notify', ...shape], env, rss: true },
      { name: 'vmbridge notify, no service', args: [BIN, 'notify', ...shape], env: { ...process.env, VMBRIDGE_NOTIFY_SOCKET: absent }, rss: true },
      { name: 'vmbridge notify --config (reads the settings file), service running', args: [BIN, 'notify', '--config', service.configPath, '--socket', socket, ...shape], env, rss: true },
    ];
    // A first run of each warms the file cache; it is not counted.
    for (const c of commands) await runOnce(c.args, c.env);
    const samples = commands.map(() => [] as number[]);
    const codes = commands.map(() => 0);
    for (let i = 0; i < RUNS; i++) {
      for (const [k, c] of commands.entries()) {
        const r = await runOnce(c.args, c.env);
        samples[k]!.push(r.ms);
        codes[k] = Math.max(codes[k]!, r.code);
      }
      if (i === RUNS - 1 || (i + 1) % 10 === 0) process.stderr.write(`startup: ${i + 1}/${RUNS}\n`);
    }
    let haveTime = true;
    await access(GNU_TIME).catch(() => (haveTime = false));
    const rows: StartupRow[] = [];
    for (const [k, c] of commands.entries()) {
      let peak: number | null = null;
      if (haveTime && c.rss) {
        peak = 0;
        for (let i = 0; i < RSS_RUNS; i++) peak = Math.max(peak, await peakRssKiB(c.args, c.env));
        peak = Math.round((peak / 1024) * 10) / 10;
      }
      rows.push({ name: c.name, wallMs: timing(samples[k]!), peakRssMiB: peak, exitCode: codes[k]! });
    }
    const floor = rows[0]!.wallMs.p50;
    const ratio = (name: string): number => Math.round(((rows.find((r) => r.name === name)?.wallMs.p50 ?? NaN) / floor) * 100) / 100;
    const over = ratio('vmbridge notify, service running');
    const overNone = ratio('vmbridge notify, no service');
    return { runs: RUNS, rows, notifyP50OverFloor: over, notifyNoServiceP50OverFloor: overNone, withinTwiceFloor: over <= 2 && overNone <= 2 };
  } finally {
    const exited = new Promise((r) => service.child.once('exit', r));
    service.child.kill('SIGTERM');
    await exited;
  }
}

export function startupTable(r: StartupResult): string {
  return [
    `| start-up, ${r.runs} runs each (ms) | p50 | p95 | max | peak RSS (MiB) | exit |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...r.rows.map((x) => `| ${x.name} | ${x.wallMs.p50} | ${x.wallMs.p95} | ${x.wallMs.max} | ${x.peakRssMiB ?? 'n/a'} | ${x.exitCode} |`),
    '',
    `notify p50 / node -e 0 p50: ${r.notifyP50OverFloor} with the service, ${r.notifyNoServiceP50OverFloor} without`,
    `target notify within 2x the start-up of node -e 0: ${r.withinTwiceFloor ? 'met' : 'MISSED'}`,
  ].join('\n');
}

async function standalone(): Promise<void> {
  const { startDovecot } = await import('../test/support/dovecot.js');
  const { startRedis } = await import('../test/support/redis.js');
  const dir = await shortTempDir('vmb-nb');
  const voicemailConf = join(dir, 'voicemail.conf');
  await writeFile(voicemailConf, ['[general]', 'format=wav', '', '[default]', '100 => 1,Bench 100,u100@example.invalid,,imapuser=u100|imappassword=pw-u100', ''].join('\n'));
  const dovecot = await startDovecot({ users: [{ user: 'u100', pass: 'pw-u100' }] });
  const redis = await startRedis();
  try {
    const r = await measureStartup({ redisUrl: redis.url, imapPort: dovecot.port, voicemailConf, mailbox: '100' });
    const cpus = (await import('node:os')).cpus().length;
    const date = new Date().toISOString();
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(ROOT, 'bench/results/notify.json'), `${JSON.stringify({ date, machine: { cpus, node: process.version }, startup: r }, null, 2)}\n`);
    const table = `vmbridge start-up benchmark, ${date}, ${cpus} CPUs, Node ${process.version}\n\n${startupTable(r)}\n`;
    await writeFile(join(ROOT, 'bench/results/notify.md'), table);
    process.stdout.write(`\n${table}`);
  } finally {
    await redis.stop();
    await dovecot.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  standalone().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
