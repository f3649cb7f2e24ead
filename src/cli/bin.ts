#!/usr/bin/env node
import { main, report } from './main.js';

function finish(code: number): void {
  process.exitCode = code;
  // Let stdout drain; a client library that still holds a handle must not keep a CLI call alive.
  setTimeout(() => process.exit(code), 3_000).unref();
}

main(process.argv.slice(2)).then(finish, (err: unknown) => finish(report(err)));
