/**
 * `npm run bench`: how fast vmbridge turns voicemail into email, against the floor of what the
 * same IMAP server can do at all, measured in the same run on the same machine.
 *
 *   floor   bare APPEND round trip (one warm connection), IDLE notification delay, and bare
 *           parallel APPEND throughput (as many connections as vmbridge's sync.concurrency)
 *   vmbridge  new voicemail (the .txt renamed into INBOX, as Asterisk does) until an independent
 *           IMAP session sees the email (STATUS every millisecond), with 1 and with 100
 *           mailboxes; initial import throughput of 1,000 voicemails of about 50 KB (with only the
 *           ten import mailboxes configured); peak RSS of the vmbridge process; an email read in
 *           a mail client until the voicemail is in Old/ and the owning Asterisk was told, heard
 *           by IDLE, and again heard by Dovecot push (a Dovecot of its own with the push script);
 *           new voicemail to email with the default MP3 made by SoX from a real Asterisk
 *           recording, beside the same recording attached as it is and the bare conversion
 *   start-up  `vmbridge notify` (externnotify, which Asterisk waits for) with and without a
 *           running service, `--version` and `--help`, beside a bare `node -e 0` (bench/notify.ts)
 *
 * Numbers go to bench/results/latest.json and a table is printed. Timings are never asserted in
 * tests: these machines are shared and noisy, so every figure is compared with its floor here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { stringify } from 'yaml';
import { SoxTranscoder } from '../src/audio/sox.js';
import { buildVoicemailEmail } from '../src/imap/voicemail-email.js';
import type { MailboxRef } from '../src/spool/types.js';
import { AmiClient } from '../src/mwi/ami-client.js';
import { leaveVoicemail } from '../test/support/asterisk-spool.js';
import { startAmiServer } from '../test/support/ami-server.js';
import { freePort } from '../test/support/ports.js';
import { startDovecot } from '../test/support/dovecot.js';
import { shortTempDir } from '../test/support/processes.js';
import { startRedis } from '../test/support/redis.js';
import { measureStartup, startupTable } from './notify.js';
import { open, peakRssMiB, progress, ROOT, startVmbridge, stats, type Stats, type Vmbridge } from './support.js';

const LATENCY_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const IDLE_SAMPLES = Number(process.env.BENCH_IDLE_SAMPLES ?? 60);
const IMPORT_MESSAGES = Number(process.env.BENCH_IMPORT ?? 1000);
const IMPORT_MAILBOXES = 10;
const CONCURRENCY = 4;
const AUDIO = randomBytes(36 * 1024); // base64 in the email: ~49 KB, about 50 KB with headers and body

async function sampleEmail(): Promise<Buffer> {
  const dir = await shortTempDir('vmb-s');
  const ref: MailboxRef = { context: 'default', mailbox: 'sample' };
  const left = await leaveVoicemail(dir, ref, { callerid: '"Bench Caller" <5551234>', duration: 5, formats: ['wav'], audio: AUDIO });
  const { readMailbox } = await import('../src/spool/read-mailbox.js');
  const snap = await readMailbox(dir, ref);
  const message = snap.messages.find((m) => m.id === left.msgId)!;
  return buildVoicemailEmail({
    ref, message, owner: { fullName: 'Sample', email: 'sample@example.invalid' }, timezone: 'UTC',
    from: 'voicemail@example.invalid', serverName: 'bench', messageIdDomain: 'bench.invalid', readAudio: (p) => readFile(p),
  });
}

async function floorAppend(port: number, raw: Buffer): Promise<Stats> {
  const c = await open(port, 'floor0');
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t = performance.now();
    await c.append('INBOX', raw);
    samples.push(performance.now() - t);
    progress('floor: APPEND round trip', i + 1, LATENCY_SAMPLES);
  }
  await c.logout();
  return stats(samples);
}

async function floorIdle(port: number, raw: Buffer): Promise<Stats> {
  const watcher = await open(port, 'floor1');
  const writer = await open(port, 'floor1');
  await watcher.mailboxOpen('INBOX');
  const samples: number[] = [];
  for (let i = 0; i < IDLE_SAMPLES; i++) {
    const seen = new Promise<number>((r) => watcher.once('exists', () => r(performance.now())));
    const idling = watcher.idle();
    await new Promise((r) => setTimeout(r, 30)); // let IDLE start before the change
    await writer.append('INBOX', raw);
    const t = performance.now();
    samples.push((await seen) - t);
    // IDLE goes on until the next command: a NOOP ends it.
    await watcher.noop();
    await idling;
    progress('floor: IDLE notification', i + 1, IDLE_SAMPLES);
  }
  await watcher.logout();
  await writer.logout();
  return stats(samples);
}

async function floorParallelAppend(port: number, raw: Buffer): Promise<{ messages: number; seconds: number; perSecond: number }> {
  const conns = await Promise.all(Array.from({ length: IMPORT_MAILBOXES }, (_, i) => open(port, `par${i}`)));
  const perBox = Math.ceil(IMPORT_MESSAGES / IMPORT_MAILBOXES);
  let done = 0;
  const t = performance.now();
  // As vmbridge does: CONCURRENCY mailboxes at a time, each one APPEND after another.
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (;;) {
      const i = next++;
      if (i >= conns.length) return;
      for (let k = 0; k < perBox; k++) {
        await conns[i]!.append('INBOX', raw);
        progress('floor: parallel APPEND', ++done, perBox * conns.length);
      }
    }
  }));
  const seconds = (performance.now() - t) / 1000;
  await Promise.all(conns.map((c) => c.logout()));
  return { messages: perBox * conns.length, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round((perBox * conns.length) / seconds) };
}

/** New voicemail -> visible email, one at a time, round-robin over `boxes`. */
async function vmLatency(spoolDir: string, port: number, boxes: MailboxRef[], label: string, audio: Buffer = AUDIO): Promise<Stats> {
  const observers = new Map<string, ImapFlow>();
  for (const b of boxes) observers.set(b.mailbox, await open(port, `u${b.mailbox}`));
  const counts = new Map<string, number>();
  for (const b of boxes) {
    const st = await observers.get(b.mailbox)!.status('INBOX', { messages: true });
    counts.set(b.mailbox, st ? (st.messages ?? 0) : 0);
  }
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const b = boxes[i % boxes.length]!;
    const obs = observers.get(b.mailbox)!;
    const want = counts.get(b.mailbox)! + 1;
    await leaveVoicemail(spoolDir, b, { callerid: `"Latency ${i}" <${1000 + i}>`, duration: 5, formats: ['wav'], audio });
    const t = performance.now();
    for (;;) {
      const st = await obs.status('INBOX', { messages: true });
      if (st && (st.messages ?? 0) >= want) break;
      if (performance.now() - t > 30_000) throw new Error(`${label}: voicemail ${i} for ${b.mailbox} not visible after 30 s`);
      // A STATUS loop without a pause would keep a core (of two) and a Dovecot process busy, and
      // measure that contention rather than vmbridge; 1 ms between looks costs at most 1 ms.
      await new Promise((r) => setTimeout(r, 1));
    }
    samples.push(performance.now() - t);
    counts.set(b.mailbox, want);
    progress(`vmbridge: latency, ${label}`, i + 1, LATENCY_SAMPLES);
  }
  await Promise.all([...observers.values()].map((c) => c.logout()));
  return stats(samples);
}

/** The bare conversion of one recording to MP3 by the audio tool, as vmbridge runs it. */
async function floorMp3(recording: Buffer): Promise<Stats> {
  const sox = new SoxTranscoder({ timeoutMs: 30_000 });
  await sox.check(new Set(['mp3']));
  const samples: number[] = [];
  const n = Math.max(20, Math.round(LATENCY_SAMPLES / 4));
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await sox.convert(recording, 'wav', 'mp3');
      samples.push(performance.now() - t);
      progress('floor: MP3 conversion', i + 1, n);
    }
  } finally {
    await sox.close();
  }
  return stats(samples);
}

/** One AMI round trip (Ping) to the test Asterisk. */
async function floorAmi(port: number): Promise<Stats> {
  const ami = new AmiClient({ host: '127.0.0.1', port, username: 'bench', secret: 'bench', events: false });
  await ami.connect();
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t = performance.now();
    await ami.action('Ping', {});
    samples.push(performance.now() - t);
  }
  await ami.close();
  return stats(samples);
}

async function countTxt(dir: string): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => /^msg\d{4}\.txt$/.test(n)).length;
}

/**
 * A user reads a voicemail email in a mail client: until the voicemail is in Old/ in the spool and
 * the owning Asterisk got VoicemailRefresh for the mailbox (so its phones' lights are right).
 */
async function readToSpool(
  spoolDir: string,
  port: number,
  ref: MailboxRef,
  amiRefreshes: () => number,
  label = 'vmbridge: email read -> spool moved + VoicemailRefresh',
): Promise<Stats> {
  const client = await open(port, `u${ref.mailbox}`);
  const oldDir = join(spoolDir, 'voicemail', ref.context, ref.mailbox, 'Old');
  await client.mailboxOpen('INBOX');
  const uids = (await client.fetchAll('1:*', { uid: true }, { uid: true })).map((m) => m.uid).sort((a, b) => a - b);
  const samples: number[] = [];
  const n = Math.min(LATENCY_SAMPLES, uids.length);
  for (let i = 0; i < n; i++) {
    const refreshesBefore = amiRefreshes();
    const oldBefore = await countTxt(oldDir);
    await client.messageFlagsAdd(String(uids[i]), ['\\Seen'], { uid: true });
    const t = performance.now();
    for (;;) {
      if ((await countTxt(oldDir)) > oldBefore && amiRefreshes() > refreshesBefore) break;
      if (performance.now() - t > 30_000) throw new Error(`email ${i} read: the spool or Asterisk did not follow within 30 s`);
      await new Promise((r) => setTimeout(r, 1));
    }
    samples.push(performance.now() - t);
    progress(label, i + 1, n);
  }
  await client.logout();
  return stats(samples);
}

async function main(): Promise<void> {
  const dir = await shortTempDir('vmb-b');
  const spoolDir = join(dir, 'spool');
  await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
  const lat1: MailboxRef[] = [{ context: 'default', mailbox: '100' }];
  const lat100: MailboxRef[] = Array.from({ length: 100 }, (_, i) => ({ context: 'default', mailbox: String(200 + i) }));
  const imp: MailboxRef[] = Array.from({ length: IMPORT_MAILBOXES }, (_, i) => ({ context: 'default', mailbox: String(400 + i) }));
  const mwiBox: MailboxRef = { context: 'default', mailbox: '150' };
  const pushBox: MailboxRef = { context: 'default', mailbox: '160' };
  const vmUsers = [...lat1, ...lat100, ...imp, mwiBox].map((r) => `u${r.mailbox}`);
  const floorUsers = ['floor0', 'floor1', ...Array.from({ length: IMPORT_MAILBOXES }, (_, i) => `par${i}`), 'notify0'];
  process.stderr.write('starting private Dovecot and Redis\n');
  const dovecot = await startDovecot({ users: [...vmUsers, ...floorUsers].map((u) => ({ user: u, pass: `pw-${u}` })) });
  const redis = await startRedis();
  let vm: Vmbridge | undefined;
  try {
    const raw = await sampleEmail();
    const floor = {
      appendRoundTripMs: await floorAppend(dovecot.port, raw),
      idleNotificationMs: await floorIdle(dovecot.port, raw),
      parallelAppend: await floorParallelAppend(dovecot.port, raw),
      amiRoundTripMs: undefined as Stats | undefined,
    };

    const confPath = join(dir, 'voicemail.conf');
    const writeConf = (boxes: readonly MailboxRef[]): Promise<void> => {
      const boxLines = boxes.map((r) => `${r.mailbox} => 1,Bench ${r.mailbox},u${r.mailbox}@example.invalid,,imapuser=u${r.mailbox}|imappassword=pw-u${r.mailbox}`);
      // maxmsg above the sample count: Asterisk's default of 100 per folder would (rightly) stop the moves.
      return writeFile(confPath, ['[general]', 'format=wav', 'maxmsg=9999', '', '[default]', ...boxLines, ''].join('\n'));
    };
    // The import is measured with only its own ten mailboxes configured, so that it measures the
    // import, not the first reconcile (and IMAP logins) of a hundred other, empty mailboxes.
    await writeConf(imp);
    const configPath = join(dir, 'vmbridge.yaml');
    const baseConfig = {
      spool: { dir: spoolDir, voicemailConf: confPath, watch: true, sweepSeconds: 0 },
      redis: { url: redis.url, prefix: 'bench' },
      imap: { host: '127.0.0.1', port: dovecot.port, secure: false, requireTls: false, maxConnections: 500 },
      // The engine's figures are for the recording as it is; the MP3 run below sets mp3.
      email: { messageIdDomain: 'bench.invalid', audio: 'original' },
      sync: { concurrency: CONCURRENCY },
      log: { level: 'info' }, // the production default; 'vmbridge started' is an info line
      http: { port: 0 }, // the second run below sets its own
    };
    await writeFile(configPath, stringify(baseConfig));

    // Import: 1,000 voicemails already in the spool when vmbridge starts.
    const perBox = Math.ceil(IMPORT_MESSAGES / IMPORT_MAILBOXES);
    for (const [i, b] of imp.entries()) {
      for (let k = 0; k < perBox; k++) await leaveVoicemail(spoolDir, b, { callerid: `"Import ${k}" <${k}>`, duration: 5, formats: ['wav'], audio: AUDIO });
      progress('spool: writing the import set', (i + 1) * perBox, perBox * imp.length);
    }
    const watchers = await Promise.all(imp.map((b) => open(dovecot.port, `u${b.mailbox}`)));
    vm = startVmbridge(configPath, join(ROOT, 'bench/results/vmbridge.log'));
    await vm.ready;
    const t0 = performance.now();
    let total = 0;
    while (total < perBox * imp.length) {
      const st = await Promise.all(watchers.map((w) => w.status('INBOX', { messages: true })));
      total = st.reduce((a, s) => a + (s ? (s.messages ?? 0) : 0), 0);
      progress('vmbridge: import', total, perBox * imp.length);
      if (performance.now() - t0 > 600_000) throw new Error(`import stalled at ${total}`);
      if (total < perBox * imp.length) await new Promise((r) => setTimeout(r, 50));
    }
    const importSeconds = (performance.now() - t0) / 1000;
    await Promise.all(watchers.map((w) => w.logout()));
    const importResult = { messages: perBox * imp.length, seconds: Math.round(importSeconds * 100) / 100, perSecond: Math.round((perBox * imp.length) / importSeconds) };
    let rss = await peakRssMiB(vm.child.pid!);
    {
      const exited = new Promise((r) => vm!.child.once('exit', r));
      vm.child.kill('SIGTERM');
      await exited;
    }

    // Latency: every mailbox configured; the first reconciles of all of them are let finish first.
    await writeConf([...lat1, ...lat100, ...imp, mwiBox]);
    vm = startVmbridge(configPath, join(ROOT, 'bench/results/vmbridge-latency.log'));
    await vm.ready;
    await new Promise((r) => setTimeout(r, 8_000));

    const latency1 = await vmLatency(spoolDir, dovecot.port, lat1, '1 mailbox');
    const latency100 = await vmLatency(spoolDir, dovecot.port, lat100, '100 mailboxes');
    rss = Math.max(rss, await peakRssMiB(vm.child.pid!));
    {
      const exited = new Promise((r) => vm!.child.once('exit', r));
      vm.child.kill('SIGTERM');
      await exited;
    }

    // The default email (one MP3 made by SoX) from a real Asterisk recording, beside the bare
    // conversion of the same recording and the same path without conversion.
    const recording = await readFile(join(ROOT, 'test/fixtures/asterisk/spool/voicemail/default/1000/INBOX/msg0000.wav'));
    const mp3Floor = await floorMp3(recording);
    const latencyWith = async (audio: 'mp3' | 'original', label: string): Promise<Stats> => {
      await writeFile(configPath, stringify({ ...baseConfig, email: { ...baseConfig.email, audio } }));
      vm = startVmbridge(configPath, join(ROOT, `bench/results/vmbridge-${audio}.log`));
      await vm.ready;
      await new Promise((r) => setTimeout(r, 8_000));
      const result = await vmLatency(spoolDir, dovecot.port, lat1, label, recording);
      const exited = new Promise((r) => vm!.child.once('exit', r));
      vm.child.kill('SIGTERM');
      await exited;
      return result;
    };
    const latencyOriginal = await latencyWith('original', '1 mailbox, a real recording as it is');
    const latencyMp3 = await latencyWith('mp3', '1 mailbox, MP3 made');
    await writeFile(configPath, stringify(baseConfig));

    // Mail client to phone system: a second vmbridge with the owning Asterisk as an MWI target,
    // changing the spool files itself (so its own folder-lock holds are measured).
    const ami = await startAmiServer({ spoolDir, users: [{ username: 'bench', secret: 'bench' }], voicemailBoxes: [mwiBox, pushBox].map((b) => ({ context: 'default', mailbox: b.mailbox })) });
    const amiRoundTrip = await floorAmi(ami.port);
    floor.amiRoundTripMs = amiRoundTrip;
    for (let k = 0; k < LATENCY_SAMPLES; k++) {
      await leaveVoicemail(spoolDir, mwiBox, { callerid: `"Read ${k}" <${k}>`, duration: 5, formats: ['wav'], audio: AUDIO });
    }
    const httpPort = await freePort();
    const config2 = join(dir, 'vmbridge-mwi.yaml');
    await writeFile(config2, stringify({
      ...baseConfig,
      asterisk: { ami: { host: '127.0.0.1', port: ami.port, username: 'bench', secret: 'bench', useVoicemailActions: false } },
      mwi: { targets: [{ name: 'owner', kind: 'ami-refresh', host: '127.0.0.1', port: ami.port, username: 'bench', secret: 'bench' }] },
      http: { host: '127.0.0.1', port: httpPort },
    }));
    vm = startVmbridge(config2, join(ROOT, 'bench/results/vmbridge-mwi.log'));
    await vm.ready;
    const watcher = await open(dovecot.port, `u${mwiBox.mailbox}`);
    while (((await watcher.status('INBOX', { messages: true })) || { messages: 0 }).messages! < LATENCY_SAMPLES) await new Promise((r) => setTimeout(r, 100));
    await watcher.logout();
    await new Promise((r) => setTimeout(r, 6_000)); // let the IDLE watcher settle into IDLE
    const refreshes = (): number => ami.received.filter((a) => a.action.toLowerCase() === 'voicemailrefresh' && a.get('Mailbox') === mwiBox.mailbox).length;
    const readLatency = await readToSpool(spoolDir, dovecot.port, mwiBox, refreshes);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const lockHoldMaxMs = Math.round(Number(/^vmbridge_spool_lock_hold_seconds_max (\S+)$/m.exec(metrics)?.[1] ?? NaN) * 10_000) / 10;
    const lockHolds = Number(/^vmbridge_spool_lock_holds_total (\S+)$/m.exec(metrics)?.[1] ?? NaN);
    {
      const exited = new Promise((r) => vm!.child.once('exit', r));
      vm.child.kill('SIGTERM');
      await exited;
    }

    // The same with Dovecot push instead of IDLE: a Dovecot of its own that POSTs mail-store
    // events to a third vmbridge (docs/push.md), which holds no IDLE connection.
    const pushPort = await freePort();
    const dovecotPush = await startDovecot({ users: [{ user: `u${pushBox.mailbox}`, pass: `pw-u${pushBox.mailbox}` }], push: { url: `http://127.0.0.1:${pushPort}/dovecot-push` } });
    let readViaPush: Stats;
    try {
      for (let k = 0; k < LATENCY_SAMPLES; k++) {
        await leaveVoicemail(spoolDir, pushBox, { callerid: `"Push ${k}" <${k}>`, duration: 5, formats: ['wav'], audio: AUDIO });
      }
      const pushConf = join(dir, 'voicemail-push.conf');
      await writeFile(pushConf, ['[general]', 'format=wav', 'maxmsg=9999', '', '[default]', `${pushBox.mailbox} => 1,Bench ${pushBox.mailbox},u${pushBox.mailbox}@example.invalid,,imapuser=u${pushBox.mailbox}|imappassword=pw-u${pushBox.mailbox}`, ''].join('\n'));
      const config3 = join(dir, 'vmbridge-push.yaml');
      await writeFile(config3, stringify({
        ...baseConfig,
        spool: { ...baseConfig.spool, voicemailConf: pushConf },
        redis: { ...baseConfig.redis, prefix: 'bench-push' },
        imap: { ...baseConfig.imap, port: dovecotPush.port, idle: { maxAccounts: 0 } },
        asterisk: { ami: { host: '127.0.0.1', port: ami.port, username: 'bench', secret: 'bench', useVoicemailActions: false } },
        mwi: { targets: [{ name: 'owner', kind: 'ami-refresh', host: '127.0.0.1', port: ami.port, username: 'bench', secret: 'bench' }] },
        http: { host: '127.0.0.1', port: pushPort, push: { enabled: true } },
      }));
      vm = startVmbridge(config3, join(ROOT, 'bench/results/vmbridge-push.log'));
      await vm.ready;
      const pushWatcher = await open(dovecotPush.port, `u${pushBox.mailbox}`);
      while (((await pushWatcher.status('INBOX', { messages: true })) || { messages: 0 }).messages! < LATENCY_SAMPLES) await new Promise((r) => setTimeout(r, 100));
      await pushWatcher.logout();
      await new Promise((r) => setTimeout(r, 2_000));
      const pushRefreshes = (): number => ami.received.filter((a) => a.action.toLowerCase() === 'voicemailrefresh' && a.get('Mailbox') === pushBox.mailbox).length;
      readViaPush = await readToSpool(spoolDir, dovecotPush.port, pushBox, pushRefreshes, 'vmbridge: email read -> spool moved + VoicemailRefresh, Dovecot push');
    } finally {
      if (vm.child.exitCode === null) {
        const exited = new Promise((r) => vm!.child.once('exit', r));
        vm.child.kill('SIGTERM');
        await exited;
      }
      await dovecotPush.stop();
    }
    await ami.close();

    // Start-up last: its service reconciles a mailbox of its own (IMAP user notify0) as it is told.
    const notifyConf = join(dir, 'voicemail-notify.conf');
    await writeFile(notifyConf, ['[general]', 'format=wav', '', '[default]', '170 => 1,Bench 170,notify0@example.invalid,,imapuser=notify0|imappassword=pw-notify0', ''].join('\n'));
    const startup = await measureStartup({ redisUrl: redis.url, imapPort: dovecot.port, voicemailConf: notifyConf, mailbox: '170' });

    const results = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      settings: { concurrency: CONCURRENCY, messageBytes: raw.length, latencySamples: LATENCY_SAMPLES },
      floor: { ...floor, mp3ConversionMs: mp3Floor },
      vmbridge: {
        latency1MailboxMs: latency1, latency100MailboxesMs: latency100, import: importResult, peakRssMiB: rss,
        latency1MailboxMp3Ms: latencyMp3, latency1MailboxSameRecordingAsItIsMs: latencyOriginal,
        emailReadToSpoolAndRefreshMs: readLatency, emailReadToSpoolAndRefreshViaPushMs: readViaPush, spoolLockHoldMaxMs: lockHoldMaxMs, spoolLockHolds: lockHolds,
      },
      targets: {
        latencyP99WithinAppendP99Plus50ms: latency1.p99 <= floor.appendRoundTripMs.p99 + 50 && latency100.p99 <= floor.appendRoundTripMs.p99 + 50,
        importAtLeastHalfOfBareParallelAppend: importResult.perSecond >= floor.parallelAppend.perSecond / 2,
        readToSpoolP99WithinIdlePlusAmiPlus100ms: readLatency.p99 <= floor.idleNotificationMs.p99 + amiRoundTrip.p99 + 100,
        notifyWithinTwiceNodeStartup: startup.withinTwiceFloor,
      },
      startup,
    };
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    const row = (name: string, s: Stats): string => `| ${name} | ${s.n} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.max} |`;
    const table = [
      `vmbridge benchmark, ${results.date}, ${results.machine.cpus} CPUs, Node ${results.machine.node}, messages of ${raw.length} bytes`,
      '',
      '| latency (ms) | n | p50 | p95 | p99 | max |',
      '| --- | --- | --- | --- | --- | --- |',
      row('floor: bare APPEND round trip', floor.appendRoundTripMs),
      row('floor: IDLE notification', floor.idleNotificationMs),
      row('vmbridge: new voicemail -> visible email, 1 mailbox', latency1),
      row('vmbridge: new voicemail -> visible email, 100 mailboxes', latency100),
      row('floor: MP3 conversion of a 6.8 s Asterisk recording (SoX)', mp3Floor),
      row('vmbridge: new voicemail -> visible email with that MP3 (default), 1 mailbox', latencyMp3),
      row('vmbridge: the same with mp3 off (recording as it is)', latencyOriginal),
      row('floor: AMI round trip (Ping)', amiRoundTrip),
      row('vmbridge: email read -> spool moved + VoicemailRefresh', readLatency),
      row('vmbridge: the same, told by Dovecot push (no IDLE)', readViaPush),
      '',
      '| throughput | messages | seconds | msg/s |',
      '| --- | --- | --- | --- |',
      `| floor: bare APPEND, ${CONCURRENCY} connections at a time | ${floor.parallelAppend.messages} | ${floor.parallelAppend.seconds} | ${floor.parallelAppend.perSecond} |`,
      `| vmbridge: initial import | ${importResult.messages} | ${importResult.seconds} | ${importResult.perSecond} |`,
      '',
      `peak RSS of vmbridge run: ${rss} MiB`,
      `longest Asterisk folder lock held by vmbridge: ${lockHoldMaxMs} ms over ${lockHolds} holds (Asterisk gives up after 5000 ms)`,
      `target read-to-spool p99 <= IDLE p99 + AMI p99 + 100 ms: ${results.targets.readToSpoolP99WithinIdlePlusAmiPlus100ms ? 'met' : 'MISSED'}`,
      `target p99 <= APPEND p99 + 50 ms: ${results.targets.latencyP99WithinAppendP99Plus50ms ? 'met' : 'MISSED'}`,
      `target import >= half of bare parallel APPEND: ${results.targets.importAtLeastHalfOfBareParallelAppend ? 'met' : 'MISSED'}`,
      '',
      startupTable(startup),
    ].join('\n');
    await writeFile(join(ROOT, 'bench/results/latest.md'), `${table}\n`);
    process.stdout.write(`\n${table}\n`);
  } finally {
    if (vm && vm.child.exitCode === null) {
      const exited = new Promise((r) => vm!.child.once('exit', r));
      vm.child.kill('SIGTERM');
      await exited;
    }
    await redis.stop();
    await dovecot.stop();
  }
}

// Interrupted: exit normally so the servers' exit handlers stop them.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
