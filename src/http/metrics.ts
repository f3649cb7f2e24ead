/** Counters for /metrics, kept in the process (each worker process reports its own). */
import type { Op } from '../sync/plan.js';

export class Metrics {
  private reconciles = 0;
  private failures = 0;
  private readonly ops = new Map<string, number>();
  private lastMs = 0;
  private readonly started = Date.now();

  reconciled(ops: readonly Op[], ms: number): void {
    this.reconciles++;
    this.lastMs = ms;
    for (const op of ops) {
      const key = `${op.kind}|${op.reason}`;
      this.ops.set(key, (this.ops.get(key) ?? 0) + 1);
    }
  }

  failed(): void {
    this.failures++;
  }

  render(): string {
    const lines = [
      '# HELP vmbridge_reconciles_total Reconciles finished.',
      '# TYPE vmbridge_reconciles_total counter',
      `vmbridge_reconciles_total ${this.reconciles}`,
      '# HELP vmbridge_reconcile_failures_total Reconciles that failed (retried with backoff).',
      '# TYPE vmbridge_reconcile_failures_total counter',
      `vmbridge_reconcile_failures_total ${this.failures}`,
      '# HELP vmbridge_ops_total Changes applied, by kind and decision-table row.',
      '# TYPE vmbridge_ops_total counter',
      ...[...this.ops].map(([key, n]) => {
        const [kind, reason] = key.split('|');
        return `vmbridge_ops_total{kind="${kind}",reason="${reason}"} ${n}`;
      }),
      '# HELP vmbridge_last_reconcile_seconds Duration of the last reconcile.',
      '# TYPE vmbridge_last_reconcile_seconds gauge',
      `vmbridge_last_reconcile_seconds ${(this.lastMs / 1000).toFixed(3)}`,
      '# HELP vmbridge_uptime_seconds Seconds since the process started.',
      '# TYPE vmbridge_uptime_seconds gauge',
      `vmbridge_uptime_seconds ${Math.round((Date.now() - this.started) / 1000)}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
