/**
 * The package as an administrator gets it: `npm pack` of a copy of the sources with no dist/ (so
 * prepack must build it), the file list of the tarball, `npm install -g` of that tarball into a
 * prefix of its own, and the installed `vmbridge` run from another directory. Then the systemd
 * unit, checked by systemd-analyze (installed with the test packages by scripts/install-deps.sh).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// What a checkout has that is not source: never copied, so the pack starts from what git has.
const NOT_COPIED = new Set(['node_modules', '.git', '.cache', '.demo', '.run', 'dist']);

interface PackFile {
  readonly path: string;
  readonly mode: number;
}

describe('the npm package', () => {
  let work: string;
  let files: PackFile[];
  let tarball: string;
  let prefix: string;
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmbridge-pack-'));
    const src = join(work, 'src');
    await cp(ROOT, src, { recursive: true, filter: (from) => !NOT_COPIED.has(from.slice(ROOT.length).split('/')[0] ?? '') });
    // The build needs the dev dependencies (tsc, @types); the tarball does not include them.
    await symlink(join(ROOT, 'node_modules'), join(src, 'node_modules'));
    const out = join(work, 'out');
    await mkdir(out);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: src, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(stdout) as [{ filename: string; files: PackFile[] }];
    files = info.files;
    tarball = join(out, info.filename);
    prefix = join(work, 'prefix');
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships the built program, the config examples and the docs', () => {
    const paths = new Set(files.map((f) => f.path));
    for (const p of ['dist/src/cli/bin.js', 'dist/src/cli/main.js', 'dist/workers/reconcile.js', 'config/vmbridge.example.yaml', 'config/README.md', 'config/systemd/vmbridge.service', 'config/dovecot/vmbridge-push.lua', 'docs/sync.md', 'README.md', 'package.json']) {
      assert.ok(paths.has(p), `${p} is in the tarball`);
    }
  });

  it('ships nothing that does not run: no tests, bench, demo, scripts, TypeScript sources or source maps', () => {
    const stray = files.map((f) => f.path).filter((p) => /^(test|bench|demo|scripts|src|workers|\.ci)\//.test(p) || p.endsWith('.ts') || p.endsWith('.map') || p === 'Dockerfile' || p.startsWith('tsconfig'));
    assert.deepEqual(stray, []);
  });

  it('installs with npm install -g, and vmbridge runs from any directory', async () => {
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: work });
    const bin = join(prefix, 'bin', 'vmbridge');
    const installed = join(prefix, 'lib', 'node_modules', 'vmbridge', 'dist', 'src', 'cli', 'bin.js');
    assert.match(await readFile(installed, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok(((await stat(installed)).mode & 0o111) !== 0, 'the installed bin is executable');
    const elsewhere = await mkdtemp(join(work, 'cwd-'));
    const v = await run(bin, ['--version'], { cwd: elsewhere });
    assert.equal(v.stdout, `${version}\n`);
    const help = await run(bin, ['--help'], { cwd: elsewhere });
    assert.match(help.stdout, new RegExp(`^vmbridge ${version.replace(/\./g, '\\.')} - `));
    assert.match(help.stdout, /\n {2}run {2,}Run the service/);
    const doctorHelp = await run(bin, ['doctor', '--help'], { cwd: elsewhere });
    assert.match(doctorHelp.stdout, /doctor/);
  });

  it('has a systemd unit that systemd-analyze verify accepts without a warning', async () => {
    // verify insists that ExecStart names an existing program: point it at the one just installed.
    const unit = await readFile(join(ROOT, 'config/systemd/vmbridge.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/vmbridge run$/m);
    const dir = await mkdtemp(join(work, 'unit-'));
    const file = join(dir, 'vmbridge.service');
    await writeFile(file, unit.replace(/^ExecStart=\/usr\/local\/bin\/vmbridge /m, `ExecStart=${join(prefix, 'bin', 'vmbridge')} `));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', file], { cwd: dir });
    assert.equal(`${stdout}${stderr}`, '');
    for (const line of ['User=vmbridge', 'SupplementaryGroups=asterisk', 'ProtectSystem=strict', 'ReadWritePaths=/var/spool/asterisk/voicemail', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'SystemCallFilter=@system-service', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      assert.ok(unit.split('\n').includes(line), `${line} is in the unit`);
    }
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=/m);
  });
});

