/**
 * A real headless browser for the pages vmbridge serves: Debian's Chromium, driven by
 * playwright-core (which brings no browser of its own). Closed by the test; if the test process
 * dies first, Playwright's pipe to the browser closes and Chromium exits with it.
 */
import { chromium, type Browser } from 'playwright-core';
import { requireExecutable } from './processes.js';

export async function startBrowser(): Promise<Browser> {
  const executablePath = requireExecutable('chromium', 'chromium');
  // The sandbox needs user namespaces that a root test run in a container may not have; the
  // browser only ever loads pages from 127.0.0.1 here.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}
