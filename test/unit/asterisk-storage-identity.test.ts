import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { asteriskStorageIdentity } from '../../src/imap/asterisk-storage-identity.js';

const head = (...lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');

describe('the identity of an email Asterisk\'s IMAP storage wrote', () => {
  it('msg_id, context and extension from the X-Asterisk-VM-* headers (any case, folded)', () => {
    assert.deepEqual(
      asteriskStorageIdentity(head('Message-ID: <Asterisk-1-2-1000-3@vm>', 'x-asterisk-vm-context: default', 'X-Asterisk-VM-Extension:', ' 1000', 'X-Asterisk-VM-Message-ID: 1795347150-00000001')),
      { ref: { context: 'default', mailbox: '1000' }, id: '1795347150-00000001' },
    );
  });
  it('nothing without all three, or with a value that is not a safe name or a sane id', () => {
    assert.equal(asteriskStorageIdentity(head('X-Asterisk-VM-Context: default', 'X-Asterisk-VM-Message-ID: 1-2')), undefined);
    assert.equal(asteriskStorageIdentity(head('X-Asterisk-VM-Context: ../etc', 'X-Asterisk-VM-Extension: 1000', 'X-Asterisk-VM-Message-ID: 1-2')), undefined);
    assert.equal(asteriskStorageIdentity(head('X-Asterisk-VM-Context: default', 'X-Asterisk-VM-Extension: 1000', 'X-Asterisk-VM-Message-ID: has space')), undefined);
    assert.equal(asteriskStorageIdentity(undefined), undefined);
  });
  it('the first of repeated headers counts', () => {
    assert.equal(asteriskStorageIdentity(head('X-Asterisk-VM-Context: default', 'X-Asterisk-VM-Extension: 1000', 'X-Asterisk-VM-Message-ID: 1-1', 'X-Asterisk-VM-Message-ID: 2-2'))?.id, '1-1');
  });
});
