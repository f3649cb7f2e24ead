/**
 * The installation-wide deletion breaker: more deletions than `sync.deleteBreaker.max` within
 * `sync.deleteBreaker.windowSeconds`, over every mailbox and every process, is not users cleaning
 * up but something wrong (a spool path, an account mapping, a bug), so the breaker opens and holds
 * every deletion, either way, until an admin releases it (`vmbridge sync --release-deletes`).
 * Deletions are counted before they are made, atomically in Redis, so two processes cannot both
 * slip under the limit.
 */
import type { Redis } from 'ioredis';

export interface BreakerState {
  /** When it opened (ISO time). */
  readonly since: string;
  /** Deletions in the window, the ones that opened it included. */
  readonly deletions: number;
}

export type Reservation = { readonly ok: true } | { readonly ok: false; readonly state: BreakerState; readonly opened: boolean };

// KEYS: window (sorted set of planned deletions), breaker, allowance. ARGV: now ms, window ms, max,
// n, member prefix, now ISO. The allowance is what a release let through: the deletions that were
// held, made once without counting again (they would only open the breaker a second time).
const RESERVE = `
local open = redis.call('GET', KEYS[2])
if open then return {0, open, 0} end
local n = tonumber(ARGV[4])
local allowance = tonumber(redis.call('GET', KEYS[3]) or '0')
if allowance >= n then
  redis.call('DECRBY', KEYS[3], n)
  return {1}
end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local count = redis.call('ZCARD', KEYS[1])
if count + n > tonumber(ARGV[3]) then
  local state = '{"since":"' .. ARGV[6] .. '","deletions":' .. (count + n) .. '}'
  redis.call('SET', KEYS[2], state)
  return {0, state, 1}
end
for i = 1, n do redis.call('ZADD', KEYS[1], now, ARGV[5] .. i) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1}
`;

export class DeleteBreaker {
  private counter = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { readonly max: number; readonly windowSeconds: number },
  ) {}

  private get windowKey(): string {
    return `${this.prefix}:delete-window`;
  }

  private get breakerKey(): string {
    return `${this.prefix}:delete-breaker`;
  }

  private get allowanceKey(): string {
    return `${this.prefix}:delete-allowance`;
  }

  /** Whether the breaker is open, and since when. */
  async state(): Promise<BreakerState | undefined> {
    const raw = await this.redis.get(this.breakerKey);
    return raw ? (JSON.parse(raw) as BreakerState) : undefined;
  }

  /** Counts `n` deletions about to be made; refused when the breaker is or becomes open. */
  async reserve(n: number, now = Date.now()): Promise<Reservation> {
    if (this.opts.max <= 0 || n <= 0) return { ok: true };
    const member = `${process.pid}-${now}-${++this.counter}-`;
    const r = (await this.redis.eval(RESERVE, 3, this.windowKey, this.breakerKey, this.allowanceKey, String(now), String(this.opts.windowSeconds * 1000), String(this.opts.max), String(n), member, new Date(now).toISOString())) as [number, string?, number?];
    if (r[0] === 1) return { ok: true };
    return { ok: false, state: JSON.parse(r[1] ?? '{}') as BreakerState, opened: r[2] === 1 };
  }

  /**
   * Closes the breaker and starts the count afresh; the deletions it held (as many as it counted)
   * go through once, within the window, without opening it again. True when it was open.
   */
  async release(): Promise<boolean> {
    const was = await this.state();
    const tx = this.redis.multi().del(this.breakerKey).del(this.windowKey);
    if (was) tx.set(this.allowanceKey, String(was.deletions), 'EX', this.opts.windowSeconds);
    await tx.exec();
    return was !== undefined;
  }
}
