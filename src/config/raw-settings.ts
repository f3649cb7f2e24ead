/**
 * Reading and writing raw settings (the YAML tree with environment overrides, before validation)
 * by key path.
 */

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The value at `path`, or undefined where the path leaves the tree. */
export function getAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const seg of path) {
    if (!isPlainObject(node)) return undefined;
    node = node[String(seg)];
  }
  return node;
}

/**
 * Sets the value at `path`, making the sections on the way. False where a section on the way is
 * something else than a section: it is left as written, for validation to name.
 */
export function setAt(data: Record<string, unknown>, path: readonly string[], value: unknown): boolean {
  let node = data;
  for (const seg of path.slice(0, -1)) {
    if (node[seg] === undefined || node[seg] === null) node[seg] = {};
    const next = node[seg];
    if (!isPlainObject(next)) return false;
    node = next;
  }
  node[path[path.length - 1]!] = value;
  return true;
}
