/**
 * A color proves that it is this install's blue or green. Whoever checks a color (the proxy's
 * health checks, the deploy gate) sends a fresh challenge with GET /healthz; the color answers with
 * an HMAC-SHA256 of its color and the challenge, under {secrets_dir}/color.key (0600, made on first
 * need by whichever process starts first). Whatever else answers on a color's loopback port, such as
 * a program another local account started there while the color was stopped, cannot, so it is
 * never sent a request or a token (decision 70). The color is in the proof: a proof that blue made
 * does not pass for green, so relaying the challenge to the other color does not help.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Color, currentLink, otherColor } from "./colors.ts";
import { ConfigError } from "./errors.ts";
import { createSecretFileOnce, readSecretFile, type SecretOwner } from "./secret-file.ts";

export const CHALLENGE_HEADER = "x-axe-challenge";
export const PROOF_HEADER = "x-axe-proof";
/** The proxy's stamp on each request it forwards to a color (forwardStamp); dropped from callers. */
export const FORWARDED_HEADER = "x-axe-forwarded";

/** Beside each installed release's binary: its answer to `--version --json`, written when root installed it. */
export const RELEASE_ANSWER_FILE = "version.json";

const CHALLENGE = /^[0-9a-f]{32,128}$/;
const KEY = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]+$/;

export function colorKeyFile(secretsDir: string): string {
  return join(secretsDir, "color.key");
}

/** The install's color key, created 0600 on first need (for `fileOwner` when given: frame.run_as). */
export function loadColorKey(secretsDir: string, fileOwner?: SecretOwner): Buffer {
  const file = colorKeyFile(secretsDir);
  createSecretFileOnce(file, () => `${randomBytes(32).toString("hex")}\n`, fileOwner);
  const text = readSecretFile(file);
  if (!KEY.test(text))
    throw new ConfigError(
      "SECRET_INVALID",
      `${file}: not a color key (expected 64 hex digits)`,
      `remove it and restart the proxy and both colors together: they make a new one (it is not stored anywhere else)`,
    );
  return Buffer.from(text, "hex");
}

/** The key when it exists and this process may read it (`status` run by an account that is not root); never makes one. */
export function readColorKey(secretsDir: string): Buffer | undefined {
  try {
    const text = readSecretFile(colorKeyFile(secretsDir));
    return KEY.test(text) ? Buffer.from(text, "hex") : undefined;
  } catch {
    return undefined;
  }
}

export function newChallenge(): string {
  return randomBytes(16).toString("hex");
}

/** What `color` answers to `challenge`; undefined for a challenge that is not 32-128 lower-case hex digits. */
export function colorProof(key: Buffer, color: Color, challenge: string | null): string | undefined {
  if (!challenge || !CHALLENGE.test(challenge)) return undefined;
  return createHmac("sha256", key).update(`axe-color-proof/1\n${color}\n${challenge}`).digest("hex");
}

/** Whether `proof` is `color`'s answer to `challenge`, compared in constant time. */
export function provesColor(key: Buffer, color: Color, challenge: string, proof: string | null): boolean {
  const expected = colorProof(key, color, challenge);
  return expected !== undefined && sameText(expected, proof);
}

/** Constant-time equality of `given` (whatever a peer sent) with `expected` (lower-case hex). */
function sameText(expected: string, given: string | null): boolean {
  if (given?.length !== expected.length || !HEX.test(given)) return false; // else a wider character throws
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/**
 * What the proxy stamps on every request it forwards to a color, the same for both colors (a request
 * may fail over). A local account can call a color directly, so a color believes X-Request-Id and
 * X-Forwarded-For only on a request that carries it (decision 75). Never sent to a fixed route.
 */
export function forwardStamp(key: Buffer): string {
  return createHmac("sha256", key).update("axe-forwarded/1\n").digest("hex");
}

/** Whether `stamp` (a request's FORWARDED_HEADER) is `expected` (forwardStamp), in constant time. */
export function isForwardStamp(expected: string, stamp: string | null): boolean {
  return sameText(expected, stamp);
}

/**
 * Whether what answers on `color`'s port must prove itself, by what the release's binary answered
 * when root installed it. A release from before proofs (no answer on file) is checked as before, so
 * upgrading the installed binary does not take down colors that still run an older release; from
 * its next deploy on, the color must prove itself. A color with no release must prove itself when
 * the other color's release does: nothing of ours listens there. An answer on file that cannot be
 * read counts as one that proves.
 */
export function colorMustProve(dataDir: string, color: Color): boolean {
  return releaseProves(dataDir, color) ?? releaseProves(dataDir, otherColor(color)) ?? false;
}

/** By the release's answer on file; false for a release from before proofs, undefined for no release. */
function releaseProves(dataDir: string, color: Color): boolean | undefined {
  const link = currentLink(dataDir, color);
  let text: string;
  try {
    text = readFileSync(join(link, RELEASE_ANSWER_FILE), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") return true;
    return existsSync(link) ? false : undefined;
  }
  try {
    return (JSON.parse(text) as { proves_color?: unknown }).proves_color !== false;
  } catch {
    return true;
  }
}
