import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { blindTerm } from "../../../src/frame/crypto/blind-index.ts";
import { unwrapDataKey, wrapDataKey } from "../../../src/frame/crypto/data-keys.ts";
import { KeyError } from "../../../src/frame/crypto/errors.ts";
import { masterKeyId } from "../../../src/frame/crypto/master-key.ts";
import { decryptField, encryptField } from "../../../src/frame/crypto/pii.ts";

const master = (key = randomBytes(32)) => ({ key, id: masterKeyId(key) });

describe("PII and key crypto", () => {
  test("a PII ciphertext opens only for its record and field, and never repeats", () => {
    const key = randomBytes(32);
    const sealed = encryptField(key, "rec-1", "email", "ann@example.com");
    expect(sealed).not.toContain("ann");
    expect(encryptField(key, "rec-1", "email", "ann@example.com")).not.toBe(sealed);
    expect(decryptField(key, "rec-1", "email", sealed)).toBe("ann@example.com");
    expect(() => decryptField(key, "rec-2", "email", sealed)).toThrow(KeyError);
    expect(() => decryptField(key, "rec-1", "phone", sealed)).toThrow(KeyError);
    expect(() => decryptField(randomBytes(32), "rec-1", "email", sealed)).toThrow(KeyError);
    const flipped = sealed.slice(0, -4) + (sealed.at(-4) === "A" ? "B" : "A") + sealed.slice(-3);
    expect(() => decryptField(key, "rec-1", "email", flipped)).toThrow(/does not decrypt/);
  });

  test("blind terms match normalised equal values, differ across keys, fields and collections", () => {
    const key = randomBytes(32);
    const term = blindTerm(key, "people", "email", "Ann@Example.com ");
    expect(term).toBe(blindTerm(key, "people", "email", "ann@example.com"));
    expect(term).toMatch(/^email:[0-9a-f]{64}$/);
    expect(term).not.toBe(blindTerm(randomBytes(32), "people", "email", "ann@example.com"));
    expect(term.slice(6)).not.toBe(blindTerm(key, "people", "phone", "ann@example.com").slice(6));
    expect(term).not.toBe(blindTerm(key, "staff", "email", "ann@example.com"));
  });

  test("a wrapped data key opens only under its master key, entity and purpose", () => {
    const m = master();
    const dataKey = randomBytes(32);
    const wrapped = wrapDataKey(m, "axe", "pii", dataKey);
    expect(unwrapDataKey(m, "axe", "pii", wrapped).equals(dataKey)).toBe(true);
    expect(() => unwrapDataKey(m, "labs", "pii", wrapped)).toThrow(KeyError);
    expect(() => unwrapDataKey(m, "axe", "blind", wrapped)).toThrow(KeyError);
    expect(() => unwrapDataKey(master(), "axe", "pii", wrapped)).toThrow(/does not open with master key/);
  });
});
