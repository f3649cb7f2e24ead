/** A logger whose lines stay in memory, for tests that count log lines or look for secrets in them. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/** `alsoInto`, when given, collects the lines of several loggers in one list as well. */
export function memoryLogger(alsoInto?: string[]): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const got = chunk.toString('utf8').split('\n').filter(Boolean);
      lines.push(...got);
      alsoInto?.push(...got);
      cb();
    },
  });
  return { log: createLogger('debug', { destination }), lines };
}
