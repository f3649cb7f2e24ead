/**
 * IMAP NOTIFY (RFC 5465) on an IDLE connection: besides the selected inbox folder, the server
 * reports changes in other named folders (Work, Family, Friends) while the session idles, each as
 * an unsolicited STATUS response for that folder (§5.2: MessageNew and MessageExpunge change
 * MESSAGES and UIDNEXT, FlagChange HIGHESTMODSEQ). One connection per watched account thus hears
 * every voicemail folder, not only the one it has selected.
 *
 *   C: A1 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))
 *                    (mailboxes ("Work" "Family" "Friends") (MessageNew MessageExpunge FlagChange))
 *   S: A1 OK NOTIFY completed
 *   S: * STATUS "Work" (MESSAGES 2 UIDNEXT 3 UNSEEN 1 HIGHESTMODSEQ 4)
 *
 * The selected folder keeps IDLE's own EXISTS, EXPUNGE and FETCH. FlagChange requires MessageNew
 * and MessageExpunge in the same group (§5.3), which is why each group names all three.
 *
 * imapflow has no NOTIFY command; this speaks it through the client's generic command path and
 * its table of handlers for untagged responses, which its own commands use but its typings do not
 * make public: their shapes are declared here, narrowly, and a client without them is left alone.
 */
import type { ImapFlow } from 'imapflow';

interface Attribute {
  readonly type: string;
  readonly value?: unknown;
}
type Attributes = readonly (Attribute | Attributes)[];

/** What of imapflow's internals this module uses (not in its typings). */
interface ImapFlowInternals {
  exec(command: string, attributes: Attributes): Promise<{ next(): void }>;
  untaggedHandlers: Record<string, ((untagged: { attributes?: readonly unknown[] }) => Promise<void>) | null | undefined>;
}

const EVENTS: Attributes = [atom('MessageNew'), atom('MessageExpunge'), atom('FlagChange')];

function atom(value: string): Attribute {
  return { type: 'ATOM', value };
}

/** Folder names this module sends as quoted strings: ASCII without quotes, backslashes or controls. */
export function notifiablePath(path: string): boolean {
  return /^[\x20-\x7e]+$/.test(path) && !/["\\]/.test(path);
}

/** The arguments of NOTIFY SET for the selected folder and `others`. */
export function notifySetAttributes(others: readonly string[]): Attributes {
  return [
    atom('SET'),
    [atom('selected'), EVENTS],
    [atom('mailboxes'), others.map((p) => ({ type: 'STRING', value: p })), EVENTS],
  ];
}

/** The folder an unsolicited STATUS names, when it names one this session asked for. */
export function statusFolder(untagged: { attributes?: readonly unknown[] }, wanted: ReadonlySet<string>): string | undefined {
  const first = untagged.attributes?.[0];
  if (typeof first !== 'object' || first === null) return undefined;
  const value = (first as Attribute).value;
  return typeof value === 'string' && wanted.has(value) ? value : undefined;
}

/**
 * Asks the server to report changes in `others` on this session, and calls `onChange` with the
 * folder for each. False (nothing asked) when the server does not have NOTIFY, no folder can be
 * named, or the server refuses the command: the session is then an IDLE on its folder as before.
 */
export async function notifyOtherFolders(client: ImapFlow, others: readonly string[], onChange: (folder: string) => void): Promise<boolean> {
  if (!client.capabilities.has('NOTIFY')) return false;
  const paths = [...new Set(others)].filter(notifiablePath);
  if (paths.length === 0) return false;
  const internals = client as unknown as Partial<ImapFlowInternals>;
  if (typeof internals.exec !== 'function' || typeof internals.untaggedHandlers !== 'object' || internals.untaggedHandlers === null) return false;
  const handlers = internals.untaggedHandlers;
  const exec = internals.exec.bind(client);
  const wanted = new Set(paths);
  // Installed first: the server may report a change as soon as it has answered.
  handlers['STATUS'] = async (untagged) => {
    const folder = statusFolder(untagged, wanted);
    if (folder !== undefined) onChange(folder);
  };
  try {
    const response = await exec('NOTIFY', notifySetAttributes(paths));
    response.next();
    return true;
  } catch {
    handlers['STATUS'] = undefined;
    return false;
  }
}
