import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl } from '../../src/store/odbc/sql.js';
import { safeRedisUrl } from '../../src/cli/doctor/redis.js';
import { withoutPassword } from '../../src/config/url-password.js';

describe('server URLs printed without their password', () => {
  it('replaces the password, keeps user, host, port and path, and names an unreadable URL', () => {
    assert.equal(withoutPassword('postgres://vm:s3cret@db.example:5433/asterisk', 'x'), 'postgres://vm:***@db.example:5433/asterisk');
    assert.equal(withoutPassword('redis://127.0.0.1:6379/2', 'x'), 'redis://127.0.0.1:6379/2');
    assert.equal(withoutPassword('not a url', '(unreadable)'), '(unreadable)');
    assert.ok(!redactUrl('mysql://u:p%40ss@h/db').includes('p%40ss'));
    assert.equal(redactUrl('::'), '(an unreadable database URL)');
    assert.equal(safeRedisUrl('rediss://default:pw@cache:6380'), 'rediss://default:***@cache:6380');
    assert.equal(safeRedisUrl(''), '(a redis.url that is not a valid URL)');
  });
});
