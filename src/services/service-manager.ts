/**
 * launchctl and systemctl, asked with a deadline (a hung service manager must not hang a deploy
 * for ever: systemd itself gives a unit 45 s to stop), their failures turned into SERVICE_FAILED
 * errors that quote what the manager said.
 */
import { DeployError } from "../lib/errors.ts";
import { describeExit, runProgram } from "../lib/program.ts";

const MANAGER_DEADLINE_MS = 120_000;

export interface ManagerAnswer {
  ok: boolean;
  /** stdout and stderr together, or why it could not run. */
  out: string;
}

export async function askServiceManager(argv: string[]): Promise<ManagerAnswer> {
  try {
    const exit = await runProgram(argv, { deadlineMs: MANAGER_DEADLINE_MS, deadlineSignal: "SIGTERM" });
    const out = `${exit.stdout}${exit.stderr}`.trim();
    return { ok: exit.code === 0, out: exit.code === 0 || out ? out : describeExit(exit, MANAGER_DEADLINE_MS) };
  } catch (error) {
    return { ok: false, out: (error as Error).message };
  }
}

/** Runs it; throws SERVICE_FAILED with `hint` unless it succeeds. */
export async function tellServiceManager(argv: string[], hint: string): Promise<void> {
  const answer = await askServiceManager(argv);
  if (!answer.ok) throw new DeployError("SERVICE_FAILED", `${argv.join(" ")} failed: ${answer.out}`, hint);
}
