import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { notifiablePath, notifySetAttributes, statusFolder } from '../../src/imap/notify-set.js';

describe('NOTIFY SET (RFC 5465)', () => {
  it('names the selected folder and the others, each with MessageNew, MessageExpunge and FlagChange', () => {
    const events = [{ type: 'ATOM', value: 'MessageNew' }, { type: 'ATOM', value: 'MessageExpunge' }, { type: 'ATOM', value: 'FlagChange' }];
    assert.deepEqual(notifySetAttributes(['Work', 'Voicemail/Family']), [
      { type: 'ATOM', value: 'SET' },
      [{ type: 'ATOM', value: 'selected' }, events],
      [{ type: 'ATOM', value: 'mailboxes' }, [{ type: 'STRING', value: 'Work' }, { type: 'STRING', value: 'Voicemail/Family' }], events],
    ]);
  });

  it('sends only folder names that are plain ASCII without quotes or backslashes', () => {
    assert.equal(notifiablePath('Work'), true);
    assert.equal(notifiablePath('INBOX/Family and friends'), true);
    assert.equal(notifiablePath('Büro'), false);
    assert.equal(notifiablePath('a"b'), false);
    assert.equal(notifiablePath('a\\b'), false);
    assert.equal(notifiablePath('a\r\nb'), false);
  });

  it('takes an unsolicited STATUS for a folder it asked for, and nothing else', () => {
    const wanted = new Set(['Work', 'Family']);
    assert.equal(statusFolder({ attributes: [{ type: 'ATOM', value: 'Work' }, []] }, wanted), 'Work');
    assert.equal(statusFolder({ attributes: [{ type: 'STRING', value: 'Family' }, []] }, wanted), 'Family');
    assert.equal(statusFolder({ attributes: [{ type: 'ATOM', value: 'Trash' }, []] }, wanted), undefined);
    assert.equal(statusFolder({ attributes: [] }, wanted), undefined);
    assert.equal(statusFolder({}, wanted), undefined);
  });
});
