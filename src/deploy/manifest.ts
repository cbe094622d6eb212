/**
 * The release manifest: what a signed release claims about its binary. Validated with zod at
 * the receiver before anything else is believed.
 *
 * @example
 * const manifest = parseManifest(JSON.parse(payload));
 * if (manifest.target !== runningTarget()) refuse();
 */
import { z } from "zod";
import { DeployError } from "../lib/errors.ts";

export const RELEASE_FORMAT = "axe-release/1";
export const RELEASE_TARGETS = ["darwin-arm64", "darwin-x64", "linux-x64", "linux-arm64"] as const;
export type ReleaseTarget = (typeof RELEASE_TARGETS)[number];

/** Release versions name directories: letters, digits, dot, dash, plus, underscore. */
export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

export const ManifestSchema = z.strictObject({
  format: z.literal(RELEASE_FORMAT),
  version: z.string().regex(VERSION_PATTERN, "expected a release version such as 0.1.0+20261125.0219"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected a lower-case hex sha256"),
  size: z.number().int().positive(),
  commit: z.string().min(1).max(64),
  target: z.enum(RELEASE_TARGETS),
  builtAt: z.iso.datetime(),
});

export type Manifest = z.output<typeof ManifestSchema>;

/** Validates a decoded manifest; the error names the first bad field. */
export function parseManifest(value: unknown): Manifest {
  const parsed = ManifestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new DeployError(
    "RELEASE_MANIFEST",
    `verify: the release manifest is invalid: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    "rebuild the release with `npm run release`",
  );
}

/** The target this process runs on, in manifest terms. */
export function runningTarget(): string {
  return `${process.platform}-${process.arch}`;
}
