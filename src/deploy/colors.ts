/**
 * Which release each color runs, written here alone so that its three records always say the
 * same: {data_dir}/state/colors.json (read by the child backend, status and deploy status), and
 * the stable paths that launchd and systemd units name, so a unit never changes across deploys:
 * current/<color>, a link to releases/<version>, and current/<color>.env (AXE_RELEASE=<version>).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { type Color, currentLink } from "../lib/colors.ts";

export { currentLink };

import { DeployError } from "../lib/errors.ts";

// not strict: a release rolled back to must still read what a newer one wrote
const ColorPointer = z.object({ version: z.string().min(1), since: z.string() });
const ColorsSchema = z.object({ blue: ColorPointer.optional(), green: ColorPointer.optional() });
export type ColorsState = z.output<typeof ColorsSchema>;

export function colorsFile(dataDir: string): string {
  return join(dataDir, "state", "colors.json");
}

export function currentEnvFile(dataDir: string, color: Color): string {
  return join(dataDir, "current", `${color}.env`);
}

/** What colors.json says; {} before the first deploy. A file that is not what we write is an error, never {}. */
export function readColors(dataDir: string): ColorsState {
  const file = colorsFile(dataDir);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  const hint = `it says which release each color runs; \`ls -l ${join(dataDir, "current")}\` shows the same in its links: fix the file from them, or remove it and deploy again`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DeployError("COLORS_INVALID", `${file}: not JSON`, hint);
  }
  const parsed = ColorsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DeployError("COLORS_INVALID", `${file}: ${issue.path.join(".") || "(top)"}: ${issue.message}`, hint);
  }
  return parsed.data;
}

/** Points `color` at `version` (link, env file, colors.json); returns the previous state, to restore on failure. */
export function pointColor(dataDir: string, color: Color, version: string): ColorsState {
  const before = readColors(dataDir);
  const link = currentLink(dataDir, color);
  mkdirSync(dirname(link), { recursive: true, mode: 0o755 });
  const temp = `${link}.${process.pid}.tmp`;
  rmSync(temp, { force: true });
  symlinkSync(join("..", "releases", version), temp);
  renameSync(temp, link); // replaces the old link atomically
  const runs = { mode: 0o644, dirMode: 0o755 };
  writeFileAtomic(currentEnvFile(dataDir, color), `AXE_RELEASE=${version}\n`, runs);
  writeColors(dataDir, { ...before, [color]: { version, since: new Date().toISOString() } });
  return before;
}

/** `color` runs no release any more (a first deploy that failed): its link, env file and entry go. */
export function forgetColor(dataDir: string, color: Color): void {
  const { [color]: _forgotten, ...rest } = readColors(dataDir);
  writeColors(dataDir, rest);
  rmSync(currentLink(dataDir, color), { force: true });
  rmSync(currentEnvFile(dataDir, color), { force: true });
}

function writeColors(dataDir: string, state: ColorsState): void {
  writeFileAtomic(colorsFile(dataDir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
}
