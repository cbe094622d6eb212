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

/** Releases carry a monotonic sequence, so a machine can refuse an older one (decision 45). */
export const RELEASE_FORMAT = "axe-release/2";
/** Releases signed before sequences: accepted, read as sequence 0 (older than any sequenced release). */
export const LEGACY_RELEASE_FORMAT = "axe-release/1";
export const RELEASE_TARGETS = ["darwin-arm64", "darwin-x64", "linux-x64", "linux-arm64"] as const;
export type ReleaseTarget = (typeof RELEASE_TARGETS)[number];

/** Release versions name directories: letters, digits, dot, dash, plus, underscore. */
export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

const fields = {
  version: z.string().regex(VERSION_PATTERN, "expected a release version such as 0.1.0+20261125.0219"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected a lower-case hex sha256"),
  size: z.number().int().positive(),
  commit: z.string().min(1).max(64),
  target: z.enum(RELEASE_TARGETS),
  builtAt: z.iso.datetime(),
};

export const ManifestSchema = z.discriminatedUnion("format", [
  z.strictObject({
    format: z.literal(RELEASE_FORMAT),
    ...fields,
    /** Grows with every release the operator signs (default: the build time, 20261130072630). */
    sequence: z
      .number()
      .int()
      .positive("expected a positive whole number, growing with every release")
      .max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({ format: z.literal(LEGACY_RELEASE_FORMAT), ...fields }),
]);

export type Manifest = z.output<typeof ManifestSchema>;

/** The release's place in the order releases were signed; 0 for a release signed before sequences. */
export function releaseSequence(manifest: Manifest): number {
  return manifest.format === RELEASE_FORMAT ? manifest.sequence : 0;
}

/** The default sequence of a release built at `at`: its UTC time as digits, 2026-11-30T07:26:30Z -> 20261130072630. */
export function sequenceAt(at: Date): number {
  return Number(at.toISOString().replace(/[-:T]/g, "").slice(0, 14));
}

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
