/** The last deploy or rollback from the deploy journal: when, which release, how it ended. */
import type { Config } from "../config/load.ts";
import { deployHistory } from "../deploy/history.ts";
import type { Check, StatusReport } from "./report.ts";

export function checkLastDeploy(config: Config): { lastDeploy: StatusReport["lastDeploy"]; check: Check } {
  let rows;
  try {
    rows = deployHistory(config);
  } catch (error) {
    return {
      lastDeploy: null,
      check: { name: "deploy", level: "warn", summary: `deploy journal unreadable: ${(error as Error).message}` },
    };
  }
  // runs that changed nothing on purpose (no release sent, already live) say nothing about the machine
  const last = rows.filter((row) => !row.nothingDone).at(-1);
  if (!last)
    return {
      lastDeploy: null,
      check: {
        name: "deploy",
        level: "warn",
        summary: "no deploy yet: run `axe-appliance deploy push` from the operator's machine",
      },
    };
  const lastDeploy = {
    action: last.action,
    release: last.release ?? null,
    ok: last.ok ?? null,
    started: last.started,
    who: last.who,
    error: last.error ?? null,
  };
  const what = `${last.action} of ${last.release ?? "?"} by ${last.who} at ${last.started.slice(0, 19)}Z`;
  if (last.ok === true) return { lastDeploy, check: { name: "deploy", level: "ok", summary: `${what}: ok` } };
  if (last.ok === undefined)
    return {
      lastDeploy,
      check: { name: "deploy", level: "warn", summary: `${what}: INTERRUPTED (the live color kept serving)` },
    };
  return {
    lastDeploy,
    check: {
      name: "deploy",
      level: "warn",
      summary: `${what}: FAILED at ${last.failedStep ?? "?"}: ${last.error ?? "?"} (the live color kept serving)`,
    },
  };
}
