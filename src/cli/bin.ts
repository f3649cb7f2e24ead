#!/usr/bin/env node
/**
 * The `vmbridge` executable. `notify` (Asterisk's externnotify, which Asterisk waits for),
 * `--version` and the main `--help` are answered from small modules, before anything else is
 * loaded: main.ts brings in BullMQ, ioredis, imapflow and the rest, which take longer to load than
 * Node takes to start (docs/notify.md). Every other command goes to main().
 */
import { MAIN_HELP, VERSION } from './notify-help.js';

function finish(code: number): void {
  process.exitCode = code;
  // Let stdout drain; a client library that still holds a handle must not keep a CLI call alive.
  setTimeout(() => process.exit(code), 3_000).unref();
}

function fast(argv: readonly string[]): Promise<number> | undefined {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${MAIN_HELP}\n`);
    return Promise.resolve(command === undefined ? 2 : 0);
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return Promise.resolve(0);
  }
  if (command === 'notify') return import('./notify-cmd.js').then((m) => m.runNotify(rest));
  return undefined;
}

const argv = process.argv.slice(2);
const answered = fast(argv);
if (answered) {
  answered.then(finish, (err: unknown) => {
    process.stderr.write(`vmbridge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    finish(1);
  });
} else {
  const { main, report } = await import('./main.js');
  main(argv).then(finish, (err: unknown) => finish(report(err)));
}
