import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityMessageId, parseIdentityMessageId } from '../../src/imap/identity-header.js';
import { refOfJob, jobBox } from '../../src/queue/box-fields.js';
import { reconcileJobSchema } from '../../src/queue/jobs.js';
import { lockKey, pendingKey } from '../../src/queue/reconcile-queue.js';
import { mwiJobSchema } from '../../src/queue/mwi-queue.js';
import { outcomeKey, transcribeJobId } from '../../src/queue/transcribe-queue.js';
import { StateStore } from '../../src/sync/state-store.js';
import { mailboxKey, redisBoxPart, sameMailbox, type MailboxRef } from '../../src/spool/types.js';
import type { Redis } from 'ioredis';

const DOMAIN = 'vmbridge.invalid';
const main: MailboxRef = { context: 'default', mailbox: '1000' };
const onB: MailboxRef = { server: 'pbx-b', context: 'default', mailbox: '1000' };

describe('a mailbox named by server, context and number', () => {
  it('keeps the main server’s names as they were, and puts the server in front of the others', () => {
    assert.equal(mailboxKey(main), '1000@default');
    assert.equal(mailboxKey(onB), 'pbx-b/1000@default');
    assert.equal(redisBoxPart(main), 'default:1000');
    assert.equal(redisBoxPart(onB), 'pbx-b:default:1000');
    assert.equal(sameMailbox(main, onB), false);
    assert.equal(sameMailbox(onB, { server: 'pbx-b', context: 'default', mailbox: '1000' }), true);
  });

  it('gives the same number on two servers two sets of Redis keys', () => {
    const state = new StateStore({} as Redis, 'vmbridge');
    assert.notEqual(state.key(main), state.key(onB));
    assert.equal(state.key(main), 'vmbridge:state:default:1000');
    assert.notEqual(pendingKey('p', main), pendingKey('p', onB));
    assert.notEqual(lockKey('p', main), lockKey('p', onB));
    assert.notEqual(outcomeKey('p', main, 'x'), outcomeKey('p', onB, 'x'));
    assert.notEqual(transcribeJobId(main, 'x'), transcribeJobId(onB, 'x'));
  });

  it('carries the server through a job payload and back, and refuses a server name that is not one', () => {
    const data = reconcileJobSchema.parse({ ...jobBox(onB), reason: 'notify' });
    assert.deepEqual(refOfJob(data), onB);
    const old = reconcileJobSchema.parse({ context: 'default', mailbox: '1000', reason: 'notify' });
    assert.deepEqual(refOfJob(old), main);
    assert.equal('server' in refOfJob(old), false);
    assert.throws(() => mwiJobSchema.parse({ server: '../x', context: 'default', mailbox: '1000' }));
    assert.throws(() => mwiJobSchema.parse({ server: 'a:b', context: 'default', mailbox: '1000' }));
  });

  it('writes the server into the Message-ID of its voicemail, and reads it back', () => {
    const id = identityMessageId(onB, '1795347150-00000001', DOMAIN);
    assert.equal(id, '<vm.1795347150-00000001.1000.default.pbx-b@vmbridge.invalid>');
    assert.deepEqual(parseIdentityMessageId(id, DOMAIN), { ref: onB, id: '1795347150-00000001' });
    const plain = identityMessageId(main, '1795347150-00000001', DOMAIN);
    assert.equal(plain, '<vm.1795347150-00000001.1000.default@vmbridge.invalid>');
    assert.deepEqual(parseIdentityMessageId(plain, DOMAIN), { ref: main, id: '1795347150-00000001' });
    // An encoded character a server name cannot hold is not an identity vmbridge wrote.
    assert.equal(parseIdentityMessageId('<vm.1.1000.default.a_2Eb@vmbridge.invalid>', DOMAIN), undefined);
    assert.equal(parseIdentityMessageId('<vm.1.1000.default.b.c@vmbridge.invalid>', DOMAIN), undefined);
  });
});
