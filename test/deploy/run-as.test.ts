/**
 * frame.run_as (decision 79): blue and green, the part of the appliance the internet reaches, run
 * as the embedded cluster's account instead of root. Deploys start and switch them as before; the
 * account reads the keys a color needs and none of root's secrets beside them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { connect, openDatabase } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { anchorPlace } from "../../src/frame/store/audit-anchor.ts";
import { lookupAccount } from "../../src/lib/account.ts";
import { readLines } from "../../src/lib/line-file.ts";
import { runProgram } from "../../src/lib/program.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { type ApplianceUnderTest, receiveRelease, runAppliance, startAppliance, startLoad } from "./appliance.ts";

const ACCOUNT = "postgres"; // the embedded cluster's account on Linux, which the tests' Postgres brings

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance({ embedded: true, runAs: ACCOUNT });
}, 120_000);

afterAll(async () => {
  await app?.stop();
});

/** The real uid a process runs as, from /proc. */
const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

const deploy = async (version: string) => expect((await receiveRelease(app, version)).code).toBe(0);

describe("frame.run_as", () => {
  test("blue and green run as the account, serve through the proxy and switch under load", async () => {
    const account = (await lookupAccount(ACCOUNT))!;
    await deploy("3.1.0-a");
    expect((await proxyStatus(app.socket)).live).toBe("green");
    const db = await openDatabase(app.config);
    const sql = connect(db.target, { max: 1 });
    try {
      const load = await startLoad(app, 4, { sql, tool: "list_collections" }); // each call asks the database
      await load.answered(10);
      await deploy("3.1.0-b");
      await load.answered(10);
      const during = await load.stop();
      expect(during.failures).toEqual([]);
      expect(during.ok).toBeGreaterThan(0);
      expect((await proxyStatus(app.socket)).live).toBe("blue");
    } finally {
      await sql.end();
    }
    for (const color of ["blue", "green"] as const) {
      const { pid } = await app.backend.status(color);
      expect(uidOf(pid!)).toBe(account.uid);
    }
    const proxy = (await app.backend.status("proxy")).pid!;
    expect(uidOf(proxy)).toBe(0); // the proxy keeps its root-only admin socket
    // the first color signed the audit chains' heads as it started, into the file `keys init` made the account's
    const anchors = anchorPlace(app.config).file;
    expect(statSync(anchors).uid).toBe(account.uid);
    const reasons = readLines(anchors).map(
      ({ line }) => JSON.parse(Buffer.from(line.split(".")[1]!, "base64url").toString()).reason,
    );
    expect(reasons).toContain("timer"); // only a color's anchoring signs for the timer
    for (const color of ["blue", "green"]) {
      const log = readFileSync(join(app.config.paths.data, "logs", `${color}.log`), "utf8");
      expect(log).not.toContain("not signed");
      expect(log).not.toContain('"level":"error"');
    }
  }, 300_000);

  test("a color running as the account starts the cluster again when it stops", async () => {
    const account = (await lookupAccount(ACCOUNT))!;
    const cluster = await EmbeddedPostgres.open({ dir: join(app.config.paths.data, "postgres"), start: false });
    const before = cluster.serverPid()!;
    const stopped = await runAppliance(app, ["db", "stop"]).done;
    expect(stopped.stdout).toBe(`stopped the embedded Postgres (pid ${before})\n`);
    // a color looks every 5 s and starts it after two looks find no postmaster (decision 78), as itself
    const after = await waitFor(
      "a color to start the cluster again",
      () => {
        const pid = cluster.serverPid();
        return pid !== undefined && pid !== before ? pid : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(uidOf(after)).toBe(account.uid);
    for (const color of ["blue", "green"] as const)
      await waitFor(
        `${color}'s database to answer again`,
        async () => {
          const health = (await (await fetch(`${colorUrl(app.config, color)}/healthz`)).json()) as {
            database: { reachable: boolean };
          };
          return health.database.reachable;
        },
        { retryErrors: true, timeoutMs: 60_000 },
      );
  }, 180_000);

  test("services install writes units that start the colors as the account, and gives it their logs", async () => {
    const account = (await lookupAccount(ACCOUNT))!;
    const units = tempDir("axe-units");
    const run = await runAppliance(app, ["services", "install", "--backend", "systemd", "--dir", units, "--no-load"])
      .done;
    expect(run.code).toBe(0);
    for (const color of ["blue", "green"]) {
      expect(readFileSync(join(units, `ai.axelabs.axe.${color}.service`), "utf8")).toContain(`User=${ACCOUNT}\n`);
      const log = statSync(join(app.config.paths.data, "logs", `${color}.log`)); // launchd may open it as the account
      expect({ uid: log.uid, mode: log.mode & 0o777 }).toEqual({ uid: account.uid, mode: 0o600 });
    }
    expect(readFileSync(join(units, "ai.axelabs.axe.proxy.service"), "utf8")).not.toContain("User=");
    const logs = statSync(join(app.config.paths.data, "logs"));
    expect({ uid: logs.uid, gid: logs.gid, mode: logs.mode & 0o777 }).toEqual({
      uid: 0,
      gid: account.gid,
      mode: 0o710,
    });
  });

  test("the account reads a color's keys and none of root's secrets beside them", async () => {
    const account = (await lookupAccount(ACCOUNT))!;
    const secrets = app.config.paths.secrets;
    writeSecretFile(join(secrets, "restic-local.password"), "not for frame\n"); // as `backup init` makes it
    const canRead = async (file: string) =>
      (await runProgram(["/bin/sh", "-c", 'cat "$1" > /dev/null', "sh", file], { runAs: account, deadlineMs: 30_000 }))
        .code === 0;
    for (const file of ["master.key", "token.key", "audit.key", "audit-keys.json", "color.key", "frame-app.password"])
      expect({ file, readable: await canRead(join(secrets, file)) }).toEqual({ file, readable: true });
    expect(await canRead(join(secrets, "restic-local.password"))).toBe(false);
  });
});
