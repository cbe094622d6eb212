/**
 * restic derives a repository's key file with the scrypt parameters written in it, before it can
 * tell the file is ours; on the ring those files are on another customer's machine. A peer that
 * rewrites them must not make this machine's restic spend gigabytes at every run and WAL ship.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KEY_MAX_BYTES, keyFileProblem } from "../../src/backup/sftp-guard.ts";
import { runCli } from "../helpers/cli.ts";
import { forThisTest } from "../helpers/lifecycle.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { backupFixture, ringOverSsh } from "../helpers/restic.ts";
import { startSshd } from "../helpers/sshd.ts";
import { seedFrameLikeData } from "./fixtures.ts";

test("a peer that rewrites our key file's scrypt cost: the key is refused before restic derives it, and the error says so", async () => {
  const db = forThisTest(await freshDatabase("bk"), (d) => d.drop());
  await seedFrameLikeData(db.sql, 20);
  const sshd = forThisTest(await startSshd(), (s) => s.stop());
  const { dir: ringDir, ring } = ringOverSsh(sshd.configFile("peer"));
  const fx = backupFixture({ database: db.target, ring });
  expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
  const first = await runCli(["backup", "run", "--config", fx.configDir]);
  expect(first.stderr).not.toContain("error:");
  expect(first.code).toBe(0);

  // 256 MiB per try here; the same edit with N = 2^25 is 32 GiB.
  const [name] = readdirSync(join(ringDir, "keys"));
  const keyFile = join(ringDir, "keys", name!);
  const honest = readFileSync(keyFile, "utf8");
  writeFileSync(keyFile, JSON.stringify({ ...JSON.parse(honest), N: 2 ** 18, r: 8 }));
  const run = await runCli(["backup", "run", "--tier", "ring", "--config", fx.configDir]);
  expect(run.code).toBe(7);
  expect(run.stderr).toContain("refused the peer's key file");
  expect(run.stderr).toContain("N=262144, r=8");
  expect(run.stderr).not.toContain("does not open this repository"); // not the password's fault

  writeFileSync(keyFile, honest);
  const again = await runCli(["backup", "run", "--tier", "ring", "--config", fx.configDir]);
  expect(again.stderr).toBe("");
  expect(again.code).toBe(0);
}, 240_000);

test("a key file is judged as restic (Go) reads it: any spelling of N, r and p, escaped names, the last duplicate", () => {
  const honest = { kdf: "scrypt", N: 32768, r: 8, p: 5, salt: "c2FsdA==", data: "ZGF0YQ==" };
  const judge = (text: string) => keyFileProblem(Buffer.from(text));
  expect(judge(JSON.stringify(honest))).toBeUndefined();
  expect(judge(JSON.stringify({ ...honest, n: 2 ** 25 }))).toContain("N=33554432");
  expect(judge(JSON.stringify(honest).replace('"r":8', '"\\u0052":4096'))).toContain("r=4096");
  expect(judge(`${JSON.stringify(honest).slice(0, -1)},"N":33554432}`)).toContain("N=33554432");
  expect(judge(JSON.stringify({ ...honest, p: 100_000 }))).toContain("of work");
  expect(judge(JSON.stringify({ ...honest, N: 1e300 }))).toContain("its N is");
  expect(judge(`${JSON.stringify(honest)}${" ".repeat(KEY_MAX_BYTES)}`)).toContain("bytes");
  expect(judge("not json")).toBe("it is not JSON");
});
