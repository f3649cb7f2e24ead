/**
 * MWI target "smdi": message lamps on a PBX reached over an SMDI serial link, with the stations
 * of Asterisk's smdi.conf. A lamp is on or off, so a publication that does not change it sends
 * nothing: the sender remembers what it told each station since the device was (re)opened. After
 * a reopen that memory is gone (the bytes last written before the loss may never have reached the
 * switch), so the next publication for a station is written even if it repeats the last one.
 */
import type { SmdiMwiTarget } from '../config/schema.js';
import type { Logger } from '../log.js';
import { assertSafeName } from '../spool/names.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import type { MwiCounts } from './counts.js';
import { lampMessage, lampOn, type SmdiReply } from './smdi.js';
import { planSmdiTarget, readSmdiConf, type SmdiPlan } from './smdi-conf.js';
import { SmdiPort } from './smdi-port.js';
import type { MwiSender } from './targets.js';

export interface SmdiSenderOptions {
  readonly log: Logger;
  /** Where the target sits in mwi.targets, for error messages (`mwi.targets.<i>.port`). */
  readonly settingKey?: string;
  /** First reopen wait; tests shorten it. */
  readonly reopenInitialMs?: number;
  readonly stty?: string;
}

export class SmdiSender implements MwiSender {
  readonly name: string;
  readonly kind = 'smdi' as const;
  private readonly log: Logger;
  private setup: Promise<{ plan: SmdiPlan; port: SmdiPort }> | undefined;
  /** Station to the lamp state last written to it since the device was opened. */
  private readonly shown = new Map<string, boolean>();
  private closed = false;

  constructor(
    private readonly target: SmdiMwiTarget,
    private readonly opts: SmdiSenderOptions,
  ) {
    this.name = target.name;
    this.log = opts.log.child({ mwiTarget: target.name });
  }

  async publish(ref: MailboxRef, counts: MwiCounts): Promise<void> {
    assertSafeName('context', ref.context);
    assertSafeName('mailbox', ref.mailbox);
    const { plan, port } = await this.ready();
    // smdi.conf maps mailbox@context; which servers' mailboxes reach this line is mwi.targets[].servers.
    const stations = plan.stations.get(mailboxKey({ context: ref.context, mailbox: ref.mailbox })) ?? [];
    if (stations.length === 0) {
      this.log.debug({ mailbox: mailboxKey(ref) }, 'no SMDI station is mapped to this mailbox in smdi.conf');
      return;
    }
    const on = lampOn(counts);
    for (const station of stations) {
      if (this.shown.get(station) === on) continue;
      await port.write(lampMessage(on, station, plan.msdstrip));
      this.shown.set(station, on);
      this.log.info({ mailbox: mailboxKey(ref), station, lamp: on ? 'on' : 'off', device: plan.device }, 'SMDI lamp message sent');
    }
  }

  /** smdi.conf is read once, on first use (the settings loader already checked it at start). */
  private ready(): Promise<{ plan: SmdiPlan; port: SmdiPort }> {
    this.setup ??= readSmdiConf(this.target.smdiConf).then((conf) => {
      const plan = planSmdiTarget(conf, this.target.port, this.opts.settingKey ?? `mwi.targets[${this.target.name}].port`);
      for (const p of plan.problems) this.log.warn({ file: p.file, line: p.line }, p.problem);
      const port = new SmdiPort({
        device: plan.device,
        line: plan.line,
        msdstrip: plan.msdstrip,
        log: this.log,
        reopenInitialMs: this.opts.reopenInitialMs ?? 500,
        reopenMaxMs: this.target.reopenMaxSeconds * 1000,
        writeTimeoutMs: this.target.timeoutSeconds * 1000,
        ...(this.opts.stty !== undefined ? { stty: this.opts.stty } : {}),
      });
      port.on('open', () => this.shown.clear());
      port.on('reply', (r: SmdiReply) => this.onReply(r, plan));
      if (this.closed) void port.close();
      return { plan, port };
    });
    // A file that could not be read is read again by the next attempt.
    this.setup.catch(() => {
      this.setup = undefined;
    });
    return this.setup;
  }

  private onReply(r: SmdiReply, plan: SmdiPlan): void {
    if (r.kind === 'mwi-failure') {
      if (r.cause === 'INV') {
        // Nothing was lit: forget the station, so a later publication (after the switch or
        // smdi.conf is fixed) is written again.
        this.shown.delete(r.station);
        this.log.warn({ station: r.station, device: plan.device }, 'the switch says this SMDI station does not exist (MWI INV); check [mailboxes] in smdi.conf');
      } else this.log.info({ station: r.station, device: plan.device }, 'the switch says this lamp was already in that state (MWI BLK)');
    } else if (r.kind === 'unknown') {
      this.log.debug({ text: r.text, device: plan.device }, 'unrecognised SMDI message from the switch');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const setup = this.setup;
    if (!setup) return;
    const done = await setup.catch(() => undefined);
    await done?.port.close();
  }
}
