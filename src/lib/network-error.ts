/**
 * What a failed fetch or connection says, for an operator: the system's code and a plain reason,
 * on one line. Bun's own texts ("Is the computer able to access the url?", "pass `verbose: true`
 * in the second argument to fetch()") speak to a developer at a console, not to someone reading
 * `status` at night.
 *
 * @example
 * catch (error) { return `no answer from ${url}: ${networkFailure(error)}`; } // "ECONNREFUSED (nothing listens there)"
 */

const REASONS: Record<string, string> = {
  ECONNREFUSED: "nothing listens there",
  ENOENT: "no such socket",
  ECONNRESET: "the connection closed before an answer",
  EPIPE: "the connection closed while we were sending",
  EACCES: "permission denied",
  ETIMEDOUT: "no answer in time",
  TimeoutError: "no answer in time",
  EHOSTUNREACH: "no route to that host",
  ENETUNREACH: "no route to that network",
};

export function networkFailure(error: unknown): string {
  const { code, name, message } = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  const key = typeof code === "string" && code ? code : typeof name === "string" ? name : "";
  const reason = REASONS[key];
  if (reason) return `${key === "TimeoutError" ? "timeout" : key} (${reason})`;
  const text = typeof message === "string" ? message : String(error);
  return text.split("\n")[0]!.trim().slice(0, 200);
}
