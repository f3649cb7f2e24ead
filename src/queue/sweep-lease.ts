/**
 * The periodic sweep once per installation, not once per process: several `vmbridge run` on one
 * Redis each have the sweep timer, and the first to take the lease at a tick sweeps; the others
 * skip that tick. The lease is shorter than the interval so that at the next tick it is free
 * again, for whichever process comes first (so a process that died takes the sweep with it for
 * one interval at most).
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

export function sweepLeaseKey(prefix: string): string {
  return `${prefix}:sweep-lease`;
}

/** How long a lease lasts for a sweep every `intervalMs`: a tenth less, so timer drift never skips a sweep. */
export function sweepLeaseMs(intervalMs: number): number {
  return Math.max(1, Math.floor(intervalMs * 0.9));
}

/** True when this process is to sweep now. */
export async function takeSweepLease(redis: Redis, prefix: string, intervalMs: number): Promise<boolean> {
  const holder = `${hostname()}/${process.pid}`;
  return (await redis.set(sweepLeaseKey(prefix), holder, 'PX', sweepLeaseMs(intervalMs), 'NX')) === 'OK';
}
