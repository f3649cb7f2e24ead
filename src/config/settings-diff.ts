/**
 * Which settings differ between two loaded settings objects, by key (`mwi.targets`, `log.level`),
 * for a reload to say what it changes. Values are never part of the answer: secrets sit among them.
 */
import { isPlainObject } from './raw-settings.js';

/** Keys whose values differ, sorted. Arrays count as one value (a changed target list is `mwi.targets`). */
export function changedSettingKeys(before: unknown, after: unknown): string[] {
  const changed: string[] = [];
  walk(before, after, [], changed);
  return changed.sort();
}

function walk(a: unknown, b: unknown, path: string[], out: string[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[key], b[key], [...path, key], out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path.join('.'));
}
