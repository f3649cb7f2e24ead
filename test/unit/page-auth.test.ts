import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isAuthorized } from '../../src/http/page-auth.js';

const creds = { username: 'admin', password: 'pä:ss word' };
const basic = (s: string): string => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;

describe('status page login', () => {
  it('takes Basic with the right user and password (the password may hold a colon and UTF-8), and Bearer with the password', () => {
    assert.equal(isAuthorized(basic('admin:pä:ss word'), creds), true);
    assert.equal(isAuthorized(`basic ${Buffer.from('admin:pä:ss word').toString('base64')}`, creds), true);
    assert.equal(isAuthorized('Bearer pä:ss word', creds), true);
  });

  it('refuses everything else', () => {
    for (const header of [undefined, '', 'Basic', basic('admin:wrong'), basic('Admin:pä:ss word'), basic('admin'), basic(':pä:ss word'), basic('adminpä:ss word'), 'Bearer wrong', 'Bearer', 'Digest x', basic('admin:pä:ss word ')]) {
      assert.equal(isAuthorized(header, creds), false, String(header));
    }
  });
});
