/**
 * The stores of several voicemail servers as one: each call goes to the store of the mailbox's
 * server. The stores themselves know nothing of servers (a spool path or a table row has no server
 * in it), so the refs they find (listed, watched) are given their server here.
 */
import { mailboxKey, type MailboxRef, type SpoolProblem, type SpoolSnapshot, type SyncedSpoolFolder } from '../spool/types.js';
import { VmbridgeError } from '../errors.js';
import type { StoreBox, StoreChangeOutcome, StoreKind, StoreWatcher, StoreWatchOptions, VoicemailStore } from './types.js';

export interface ServerStore {
  /** MailboxRef.server of its mailboxes (undefined: the main server). */
  readonly name: string | undefined;
  /** `main` or the name, for logs. */
  readonly label: string;
  readonly store: VoicemailStore;
  /** false: its changes are left to notify and the sweep (its spool.watch). Default true. */
  readonly watch?: boolean;
}

export class ServerStores implements VoicemailStore {
  readonly kind: StoreKind;
  readonly location: string;
  private readonly byName: Map<string | undefined, VoicemailStore>;

  constructor(private readonly servers: readonly ServerStore[]) {
    if (servers.length === 0) throw new RangeError('ServerStores needs at least one store');
    this.byName = new Map(servers.map((s) => [s.name, s.store]));
    this.kind = servers[0]!.store.kind;
    this.location = servers.length === 1 ? servers[0]!.store.location : servers.map((s) => `${s.label}: ${s.store.location}`).join(', ');
  }

  /** The store of one server (the doctor and the start-up log name each). */
  each(): readonly ServerStore[] {
    return this.servers;
  }

  private of(ref: MailboxRef): VoicemailStore {
    const store = this.byName.get(ref.server);
    // A job for a server taken out of the settings: nothing to do it with, and nothing is lost.
    if (!store) throw new UnknownServerError(ref);
    return store;
  }

  async listMailboxes(): Promise<{ refs: MailboxRef[]; problems: SpoolProblem[] }> {
    const refs: MailboxRef[] = [];
    const problems: SpoolProblem[] = [];
    for (const s of this.servers) {
      const listed = await s.store.listMailboxes();
      for (const r of listed.refs) refs.push(withServer(r, s.name));
      problems.push(...listed.problems);
    }
    return { refs, problems };
  }

  readMailbox(ref: MailboxRef): Promise<SpoolSnapshot> {
    return this.of(ref).readMailbox(ref);
  }

  readAudio(ref: MailboxRef, path: string): Promise<Buffer> {
    return this.of(ref).readAudio(ref, path);
  }

  assertChangeable(ref: MailboxRef): Promise<void> {
    return this.of(ref).assertChangeable(ref);
  }

  move(box: StoreBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    return this.of(box.ref).move(box, id, from, to);
  }

  remove(box: StoreBox, id: string, folder: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    return this.of(box.ref).remove(box, id, folder);
  }

  renumber(ref: MailboxRef, folder: SyncedSpoolFolder): Promise<readonly string[]> {
    return this.of(ref).renumber(ref, folder);
  }

  withFolderLock<T>(ref: MailboxRef, folder: SyncedSpoolFolder, fn: () => T | Promise<T>): Promise<T> {
    return this.of(ref).withFolderLock(ref, folder, fn);
  }

  watch(onChange: (ref: MailboxRef) => void, opts?: StoreWatchOptions): StoreWatcher {
    const watchers = this.servers.filter((s) => s.watch !== false).map((s) => s.store.watch((ref) => onChange(withServer(ref, s.name)), opts));
    return {
      ready: Promise.all(watchers.map((w) => w.ready)).then(() => undefined),
      close: () => {
        for (const w of watchers) w.close();
      },
    };
  }

  async close(): Promise<void> {
    for (const s of this.servers) await s.store.close();
  }
}

export class UnknownServerError extends VmbridgeError {
  constructor(ref: MailboxRef) {
    super('STORE_UNKNOWN_SERVER', `${mailboxKey(ref)}: no voicemail server ${JSON.stringify(ref.server)} in the settings (servers); nothing was changed`);
  }
}

function withServer(ref: MailboxRef, server: string | undefined): MailboxRef {
  return server === undefined ? { context: ref.context, mailbox: ref.mailbox } : { server, context: ref.context, mailbox: ref.mailbox };
}
