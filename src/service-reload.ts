/**
 * SIGHUP for `vmbridge run`: every setting is read again. When only voicemail.conf or the
 * passwords file changed, the running service re-reads them (new and removed mailboxes, new
 * passwords) without stopping. When a setting changed, the service is stopped as SIGTERM stops it
 * (jobs in progress finish, within sync.stopTimeoutSeconds) and started again with the new
 * settings in the same process: every part, from the log level to the MWI targets, is then built
 * from them. A new file that does not load keeps the old settings running and says why, with file
 * and key; new settings that load but do not start (a taken port, say) are logged and the old ones
 * are started again.
 */
import { changedSettingKeys } from './config/settings-diff.js';
import type { Settings } from './config/schema.js';
import { ConfigError, VmbridgeError } from './errors.js';
import type { Logger } from './log.js';
import type { Service } from './service.js';

export interface ReloadableDeps {
  /** Reads the settings again (file, environment, voicemail.conf's IMAP options). */
  readonly load: () => Promise<Settings>;
  readonly start: (settings: Settings, log: Logger) => Promise<Service>;
  readonly logger: (settings: Settings) => Logger;
  /** Neither the new nor the old settings start any more: nothing runs; the process should end. */
  readonly onDown: (err: unknown) => void;
}

export class ReloadableService {
  private reloading: Promise<void> | undefined;
  private again = false;

  private constructor(
    private readonly deps: ReloadableDeps,
    private current: { settings: Settings; log: Logger; service: Service },
  ) {}

  static async start(deps: ReloadableDeps, settings: Settings): Promise<ReloadableService> {
    const log = deps.logger(settings);
    return new ReloadableService(deps, { settings, log, service: await deps.start(settings, log) });
  }

  get settings(): Settings {
    return this.current.settings;
  }

  get log(): Logger {
    return this.current.log;
  }

  /**
   * Reloads once; a SIGHUP that arrives meanwhile runs one more reload after it (the file may have
   * changed again), however many arrive.
   */
  async reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce().catch((err: unknown) => this.current.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed'));
      } while (this.again);
    })();
    try {
      await this.reloading;
    } finally {
      this.reloading = undefined;
    }
  }

  /** Stops the service (waiting for a reload under way first). */
  async close(): Promise<void> {
    await this.reloading?.catch(() => undefined);
    await this.current.service.close();
  }

  private async reloadOnce(): Promise<void> {
    const { log } = this.current;
    let next: Settings;
    try {
      next = await this.deps.load();
    } catch (err) {
      if (!(err instanceof VmbridgeError)) throw err;
      const where = err instanceof ConfigError ? { file: err.file, key: err.key } : {};
      log.error({ err: err.message, ...where }, 'settings not reloaded: the new settings have a problem; the old ones stay in use');
      return;
    }
    const changed = changedSettingKeys(this.current.settings, next);
    if (changed.length === 0) {
      await this.current.service.reload();
      return;
    }
    log.info({ changed }, 'settings changed: restarting the service with them');
    const old = this.current;
    await old.service.close();
    const nextLog = this.deps.logger(next);
    try {
      this.current = { settings: next, log: nextLog, service: await this.deps.start(next, nextLog) };
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err), ...(err instanceof ConfigError ? { file: err.file, key: err.key } : {}) }, 'the new settings do not start; starting again with the old ones');
      try {
        this.current = { ...old, service: await this.deps.start(old.settings, old.log) };
      } catch (again) {
        this.deps.onDown(again);
      }
      return;
    }
    nextLog.info({ changed }, 'settings reloaded');
  }
}
