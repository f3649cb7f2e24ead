/**
 * A status line at the bottom of a terminal, rewritten in place, with the command's own output
 * lines printed above it. Only for a terminal: elsewhere progress goes to the log (progress-log.ts).
 *
 * Why not a progress-bar library: `vmbridge sync` prints its per-mailbox lines on the same stream
 * as the line, so the line must be taken away before every one of them and drawn again after, and
 * the numbers must be the ones the log lines carry (src/progress.ts). That is a carriage return and
 * one erase-line sequence; a library would bring its own timers, ETA and rendering for no gain.
 */

export interface LineStream {
  write(text: string): unknown;
  readonly columns?: number;
}

const ERASE_LINE = '\x1b[K';

export class StatusLine {
  private shown = '';

  constructor(private readonly out: LineStream) {}

  /** Draws (or redraws) the status line, cut to the terminal's width so it never wraps. */
  show(text: string): void {
    const width = this.out.columns ?? 80;
    this.shown = width > 1 && text.length > width - 1 ? text.slice(0, width - 1) : text;
    this.out.write(`\r${this.shown}${ERASE_LINE}`);
  }

  /** Prints ordinary output (whole lines) above the status line. */
  print(text: string): void {
    if (!this.shown) {
      this.out.write(text);
      return;
    }
    this.out.write(`\r${ERASE_LINE}${text}`);
    this.out.write(`\r${this.shown}${ERASE_LINE}`);
  }

  /** Leaves the last status on its own line, for the scrollback. */
  end(): void {
    if (this.shown) this.out.write('\n');
    this.shown = '';
  }
}
