/**
 * Crash points for the crash-safety tests: with VMB_FAULT_POINT=<name> in its environment,
 * the process kills itself with SIGKILL when it reaches that point, as a power cut or the OOM
 * killer would. Unset (always, outside those tests), nothing happens.
 */
export function faultPoint(name: string): void {
  if (process.env['VMB_FAULT_POINT'] === name) process.kill(process.pid, 'SIGKILL');
}
