/**
 * A mailbox in a job's payload: its server (absent for the main one), context and number, each
 * checked as it comes back out of Redis, since a payload is data anyone with Redis access can write.
 */
import { z } from 'zod';
import { isSafeName, isServerName } from '../spool/names.js';
import { boxOn, type MailboxRef } from '../spool/types.js';

const safeName = z.string().refine(isSafeName, 'not a safe spool name');

export const boxFields = {
  server: z.string().refine(isServerName, 'not a server name').optional(),
  context: safeName,
  mailbox: safeName,
};

/** The payload fields of `ref`; no `server` key for the main server, as jobs written before had none. */
export function jobBox(ref: MailboxRef): { server?: string; context: string; mailbox: string } {
  return ref.server === undefined ? { context: ref.context, mailbox: ref.mailbox } : { server: ref.server, context: ref.context, mailbox: ref.mailbox };
}

export function refOfJob(data: { readonly server?: string | undefined; readonly context: string; readonly mailbox: string }): MailboxRef {
  return boxOn(data.server, data.context, data.mailbox);
}
