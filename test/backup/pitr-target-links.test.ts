/**
 * `backup restore --to-cluster DIR` runs as root and builds DIR, DIR-wal and DIR-socket. DIR's
 * parent may be a sticky directory every account writes in (/tmp): another account can name
 * DIR-wal or DIR first. Each test plants, as the postgres account, what such an account would, and
 * checks that the restore refuses by name before root writes anything through it.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareCluster, writeRecoverySettings } from "../../src/backup/pitr-cluster.ts";
import { clusterAccount } from "../../src/db/embedded.ts";
import { AppError } from "../../src/lib/errors.ts";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { tempDir } from "../helpers/tmp.ts";

/** A directory like /tmp (root's, 1777) with a root-owned file beside it that no other account may change. */
function stickyPlace(): { sticky: string; live: string; victim: string } {
  const base = tempDir("axe-pitr-links");
  const sticky = join(base, "tmp");
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  const victim = join(base, "victim");
  writeFileSync(victim, "root's file\n", { mode: 0o644 });
  return { sticky, live: join(base, "live"), victim };
}

async function outcome(work: () => Promise<void>): Promise<unknown> {
  return work().then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe.skipIf(!asRoot || !postgresAccount)(
  "backup restore --to-cluster in a directory every account writes in",
  () => {
    test("with nothing planted there, the restore builds in it: DIR the account's, DIR-wal root's", async () => {
      const { sticky, live } = stickyPlace();
      const cluster = await prepareCluster(join(sticky, "restored"), live, await clusterAccount("postgres"), "axe");
      const owner = (path: string) => ({ uid: lstatSync(path).uid, dir: lstatSync(path).isDirectory() });
      expect(owner(cluster.dir)).toEqual({ uid: postgresAccount!.uid, dir: true });
      expect(owner(cluster.pgdata)).toEqual({ uid: postgresAccount!.uid, dir: true });
      expect(owner(cluster.walDir)).toEqual({ uid: 0, dir: true });
      expect(owner(cluster.socketDir)).toEqual({ uid: postgresAccount!.uid, dir: true });
    });

    test("a DIR-wal another account named first (a link to its own directory) is refused; root writes nothing through it", async () => {
      const { sticky, live, victim } = stickyPlace();
      asPostgres('mkdir "$1/mine" && chmod 777 "$1/mine" && ln -s "$1/mine" "$1/restored-wal"', sticky);
      const account = await clusterAccount("postgres");
      const error = await outcome(async () => {
        const cluster = await prepareCluster(join(sticky, "restored"), live, account, "axe");
        // While base backup and WAL come down, the account adds a link where root writes the recovery's pg_hba.conf.
        asPostgres('ln -s "$2" "$1/mine/pg_hba.conf"', sticky, victim);
        await writeRecoverySettings(cluster, { kind: "latest" });
      });
      expect(readFileSync(victim, "utf8")).toBe("root's file\n");
      expect(lstatSync(join(sticky, "mine")).mode & 0o777).toBe(0o777); // not chmod'ed through the link either
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).toContain(join(sticky, "restored-wal"));
    });

    test("a DIR-wal that is another account's own directory is refused too", async () => {
      const { sticky, live } = stickyPlace();
      asPostgres('mkdir -m 777 "$1/restored-wal"', sticky);
      const error = await outcome(async () => {
        await prepareCluster(join(sticky, "restored"), live, await clusterAccount("postgres"), "axe");
      });
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).toContain(join(sticky, "restored-wal"));
      expect(lstatSync(join(sticky, "restored-wal")).uid).toBe(postgresAccount!.uid); // not taken over by root
    });

    test("a DIR that is a link another account planted is refused, not handed to the cluster's account", async () => {
      const { sticky, live } = stickyPlace();
      asPostgres('mkdir -m 777 "$1/elsewhere" && ln -s "$1/elsewhere" "$1/restored"', sticky);
      const error = await outcome(async () => {
        await prepareCluster(join(sticky, "restored"), live, await clusterAccount("postgres"), "axe");
      });
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).toContain(join(sticky, "restored"));
    });
  },
);
