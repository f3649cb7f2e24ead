/** redis.cluster and redis.prefix: a cluster needs one hash tag in the prefix, and a seed URL. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { loadSettings } from '../../src/config/load-settings.js';
import { hashTagOf, taggedPrefix } from '../../src/config/redis-prefix.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmbridge-cluster-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function load(redisYaml: string) {
  const path = join(dir, `settings-${++n}.yaml`);
  await writeFile(path, `imap:\n  host: mail.example.com\nredis:\n${redisYaml}`);
  return loadSettings({ file: path, env: {}, defaultFile: join(dir, 'absent.yaml') });
}

async function refused(redisYaml: string, key: string): Promise<string> {
  try {
    await load(redisYaml);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.key, key, err.message);
    return err.message;
  }
  assert.fail(`expected ${key} to be refused`);
}

describe('redis.cluster settings', () => {
  it('is off by default, and a plain prefix is fine without it', async () => {
    const { settings } = await load('  prefix: vmb.one\n');
    assert.equal(settings.redis.cluster, false);
    assert.equal(settings.redis.prefix, 'vmb.one');
  });

  it('takes a hash-tagged prefix, with or without a cluster', async () => {
    assert.equal((await load("  prefix: '{vmbridge}'\n  cluster: true\n  url: redis://10.0.0.7:7000\n")).settings.redis.prefix, '{vmbridge}');
    assert.equal((await load("  prefix: 'site-{vmb}:a'\n")).settings.redis.prefix, 'site-{vmb}:a');
  });

  it('refuses a cluster without a hash tag, naming redis.prefix and what to write', async () => {
    const message = await refused('  prefix: vmbt\n  cluster: true\n', 'redis.prefix');
    assert.match(message, /hash tag/);
    assert.ok(message.includes("prefix: '{vmbt}'"), message);
  });

  it('refuses an empty hash tag with a cluster: Redis then hashes the whole key', async () => {
    const message = await refused("  prefix: 'a{}b'\n  cluster: true\n", 'redis.prefix');
    assert.ok(message.includes("prefix: '{ab}'"), message);
  });

  it('refuses braces that are not one balanced hash tag', async () => {
    for (const bad of ['{a}{b}', '{a', 'a}', '{{a}}', 'a b']) {
      const message = await refused(`  prefix: '${bad}'\n`, 'redis.prefix');
      assert.match(message, /at most one hash tag/, bad);
    }
  });

  it('an unquoted {vmbridge} is a YAML mapping, and is refused as one', async () => {
    await refused('  prefix: {vmbridge}\n  cluster: true\n', 'redis.prefix');
  });

  it('refuses a cluster URL with a database other than 0, or that is not a URL', async () => {
    assert.match(await refused("  prefix: '{v}'\n  cluster: true\n  url: redis://10.0.0.7:7000/2\n", 'redis.url'), /only database 0/);
    assert.match(await refused("  prefix: '{v}'\n  cluster: true\n  url: 10.0.0.7:7000\n", 'redis.url'), /redis:\/\/host:port/);
    assert.equal((await load("  prefix: '{v}'\n  cluster: true\n  url: rediss://node1.example.com:7000/0\n")).settings.redis.cluster, true);
  });

  it('reads the hash tag as Redis Cluster does', () => {
    assert.equal(hashTagOf('{vmb}'), 'vmb');
    assert.equal(hashTagOf('x{vmb}y'), 'vmb');
    assert.equal(hashTagOf('{}vmb'), undefined);
    assert.equal(hashTagOf('vmb'), undefined);
    assert.equal(taggedPrefix('vmb'), '{vmb}');
  });
});
