/** Reads a value this store wrote as JSON; anything else counts as absent. */
export function parseStoredJson<T>(text: string | null | undefined): T | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // a value written by something else: treat as absent
  }
}
