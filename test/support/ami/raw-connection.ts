/**
 * A bare TCP connection for replaying captured AMI bytes and reading back exactly what the
 * server wrote, without any client-side parsing in between.
 */
import { connect, type Socket } from 'node:net';

const FRAME_END = '\r\n\r\n';

function countFrames(text: string): number {
  let n = 0;
  for (let i = text.indexOf(FRAME_END); i >= 0; i = text.indexOf(FRAME_END, i + FRAME_END.length)) n++;
  return n;
}

export class RawConnection {
  private data = '';
  private cursor = 0;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.data += chunk.toString('latin1');
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Every byte received so far, as latin1 text (one character per byte). */
  get all(): string {
    return this.data;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(bytes: string): void {
    this.socket.write(bytes, 'latin1');
  }

  /** Waits for `n` unread bytes and returns exactly those. */
  async readBytes(n: number, timeoutMs = 3_000): Promise<string> {
    await this.until(() => this.data.length - this.cursor >= n, `${n} bytes`, timeoutMs);
    const out = this.data.slice(this.cursor, this.cursor + n);
    this.cursor += n;
    return out;
  }

  /**
   * Waits until the unread bytes hold `frames` messages (empty-line terminators), then a short
   * quiet spell so that anything extra the server wrote is caught too, and returns all of it.
   */
  async readFrames(frames: number, timeoutMs = 3_000, quietMs = 60): Promise<string> {
    await this.until(() => countFrames(this.data.slice(this.cursor)) >= frames, `${frames} messages`, timeoutMs);
    return this.quiet(quietMs);
  }

  /** Waits `ms` and returns whatever arrived unread meanwhile (often: nothing). */
  async quiet(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    const out = this.data.slice(this.cursor);
    this.cursor = this.data.length;
    return out;
  }

  async waitClosed(timeoutMs = 3_000): Promise<void> {
    await this.until(() => this.closed, 'the server to close the connection', timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  private until(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (ready()) {
          done();
          resolve();
        } else if (this.closed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}; unread: ${JSON.stringify(this.data.slice(this.cursor))}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; unread: ${JSON.stringify(this.data.slice(this.cursor))}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

export { countFrames };
