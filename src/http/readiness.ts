/**
 * `GET /readyz`: every component vmbridge talks to, each by name with its status, and whether the
 * service as a whole can do its job. A component is `required` when vmbridge cannot keep the two
 * sides in step without it (Redis: the queues and the sync state; the IMAP server: the email
 * side). The others only degrade the service: with an AMI target down the spool and the mailboxes
 * still sync and its lamps catch up once it is back; a Dovecot that stops pushing leaves changes
 * to IDLE and the sweep. Any required component down: HTTP 503.
 */

export type ComponentStatus = 'up' | 'down' | 'unknown';
export type ComponentKind = 'redis' | 'imap' | 'ami' | 'mwi-target' | 'dovecot-push';

/** What a check says about its component. */
export interface ComponentState {
  readonly status: ComponentStatus;
  /** One line for a person; never a secret. */
  readonly detail: string;
  /** Facts for machines (times as ISO strings, ages in seconds). */
  readonly data?: Readonly<Record<string, string | number | boolean>>;
}

export interface ComponentCheck {
  /** Unique within the report, e.g. "imap 127.0.0.1:993" or "mwi-target owner". */
  readonly name: string;
  readonly kind: ComponentKind;
  readonly required: boolean;
  /** May return several states (one per Dovecot sending push); each becomes a component. */
  check(): Promise<ComponentState | readonly (ComponentState & { readonly name: string })[]>;
}

export interface ComponentReport extends ComponentState {
  readonly name: string;
  readonly kind: ComponentKind;
  readonly required: boolean;
}

/** ready: every component up. degraded: an optional one is not. not-ready: a required one is not. */
export type OverallStatus = 'ready' | 'degraded' | 'not-ready';

export interface Readiness {
  readonly status: OverallStatus;
  readonly components: readonly ComponentReport[];
}

/** Pure: the overall status from the components. `unknown` for a required one counts as down. */
export function summarizeReadiness(components: readonly ComponentReport[]): Readiness {
  const notUp = components.filter((c) => c.status !== 'up');
  const status: OverallStatus = notUp.some((c) => c.required) ? 'not-ready' : notUp.some((c) => c.status === 'down') ? 'degraded' : 'ready';
  return { status, components };
}

export function httpStatusOf(r: Readiness): number {
  return r.status === 'not-ready' ? 503 : 200;
}

async function settleCheck(check: ComponentCheck, timeoutMs: number): Promise<ComponentReport[]> {
  const base = { kind: check.kind, required: check.required };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ComponentState>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'down', detail: `no answer within ${timeoutMs / 1000} s` }), timeoutMs);
  });
  try {
    const got = await Promise.race([
      check.check().catch((err: unknown): ComponentState => ({ status: 'down', detail: err instanceof Error ? err.message : String(err) })),
      late,
    ]);
    if (Array.isArray(got)) return (got as readonly (ComponentState & { name: string })[]).map((s) => ({ ...base, ...s }));
    return [{ ...base, name: check.name, ...(got as ComponentState) }];
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check at once, each bounded by `timeoutMs` (a check that takes longer is down). */
export async function checkReadiness(checks: readonly ComponentCheck[], timeoutMs = 3_000): Promise<Readiness> {
  const reports = await Promise.all(checks.map((c) => settleCheck(c, timeoutMs)));
  return summarizeReadiness(reports.flat());
}
