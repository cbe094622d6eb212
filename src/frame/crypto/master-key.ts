/**
 * The machine's master key: 32 random bytes, base64 in a 0600 file (`secrets/master.key`), made by
 * `axe-appliance keys init`. It only wraps the per-entity data keys. Each wrapped key names the
 * fingerprint of the master key that wrapped it, so a wrong key file fails loudly by name.
 *
 * During `keys rotate` the new key sits in `master.key.next` until every data key is re-wrapped;
 * the keyring looks in both files, so a running server finds whichever key a row asks for.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { z } from "zod";
import { createSecretFileOnce, readSecretFile, type SecretOwner } from "../../lib/secret-file.ts";
import { KeyError } from "./errors.ts";

export const MASTER_KEY_FILE = "master.key";

export interface MasterKey {
  key: Buffer;
  /** 16 hex digits naming this key; stored beside every data key it wraps. */
  id: string;
}

const KeyText = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, "expected 32 bytes in base64 (44 characters), as `axe-appliance keys init` writes");

export function masterKeyId(key: Uint8Array): string {
  return createHash("sha256").update("axe-appliance master key id\0").update(key).digest("hex").slice(0, 16);
}

export function newMasterKeyText(): string {
  return `${randomBytes(32).toString("base64")}\n`;
}

/** Reads and checks a master key file (mode 0600, 32 bytes of base64). */
export function readMasterKey(path: string): MasterKey {
  const parsed = KeyText.safeParse(readSecretFile(path));
  if (!parsed.success)
    throw new KeyError(
      "MASTER_KEY_INVALID",
      `${path}: ${parsed.error.issues[0]!.message}`,
      "restore the file from backup; a new key cannot open existing data",
    );
  const key = Buffer.from(parsed.data, "base64");
  return { key, id: masterKeyId(key) };
}

/** The master key files a server may need: the current one and, mid-rotation, the next one. */
export class MasterKeyring {
  private readonly known = new Map<string, MasterKey>();

  constructor(readonly path: string) {}

  /** The key in `master.key` now. */
  current(): MasterKey {
    const key = readMasterKey(this.path);
    this.known.set(key.id, key);
    return key;
  }

  /** The key with this id, re-reading the files when it is not known yet (rotation may have moved it). */
  byId(id: string): MasterKey {
    const cached = this.known.get(id);
    if (cached) return cached;
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const path of [this.path, `${this.path}.next`]) {
        if (!existsSync(path)) continue;
        const key = readMasterKey(path);
        this.known.set(key.id, key);
        if (key.id === id) return key;
      }
    }
    throw new KeyError(
      "MASTER_KEY_MISMATCH",
      `the data keys were wrapped by master key ${id}, but ${this.path} holds a different key (${[...this.known.keys()].join(", ") || "none"})`,
      "restore the right master.key from backup; never replace it with a new one (use `axe-appliance keys rotate` to change it)",
    );
  }
}

/** `keys init`: writes a new master key unless one exists (never overwrites); true when it wrote. */
export function initMasterKey(path: string, fileOwner?: SecretOwner): boolean {
  return createSecretFileOnce(path, newMasterKeyText, fileOwner);
}
