/** JSON from outside (another process, a file someone may have edited): parsed, or undefined, for a zod schema to judge. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
