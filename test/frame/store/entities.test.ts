import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../../src/db/connect.ts";
import { migrate } from "../../../src/db/migrate.ts";
import { initMasterKey, MasterKeyring } from "../../../src/frame/crypto/master-key.ts";
import { ensureAppRole, ensureEntity, listEntities } from "../../../src/frame/store/entities.ts";
import { DataError } from "../../../src/frame/store/errors.ts";
import { roleNames } from "../../../src/frame/store/names.ts";
import { withEntity } from "../../../src/frame/store/with-entity.ts";
import { freshDatabase, testCluster } from "../../helpers/postgres.ts";
import { tempDir } from "../../helpers/tmp.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

describe("entities", () => {
  test("each entity gets its schema, its role and wrapped data keys; creating again changes nothing", async () => {
    fx = await dataFixture();
    const entities = await listEntities(fx.db.sql);
    expect(entities.map((e) => e.name)).toEqual(["axe", "labs"]);
    expect(entities[0]!.role).not.toBe(entities[1]!.role);
    const schemas = await fx.db.sql`select nspname from pg_namespace where nspname like 'entity_%' order by 1`;
    expect(schemas.map((r) => r.nspname)).toEqual(["entity_axe", "entity_labs"]);
    const keys = await fx.db.sql`select entity, purpose, length(wrapped) as n from meta.data_keys order by 1, 2`;
    expect(keys.map((k) => `${k.entity}/${k.purpose}/${k.n}`)).toEqual([
      "axe/blind/60",
      "axe/pii/60",
      "labs/blind/60",
      "labs/pii/60",
    ]);
    const before = await fx.db.sql`select wrapped from meta.data_keys order by entity, purpose`;
    expect(await ensureEntity(fx.db.sql, { name: "axe", customer: "axe" }, fx.ring)).toBe(false);
    const after = await fx.db.sql`select wrapped from meta.data_keys order by entity, purpose`;
    expect(after).toEqual(before);
  });

  test("a bad entity name or another customer's entity is refused before any DDL", async () => {
    fx = await dataFixture(["axe"]);
    for (const name of ["Axe", "a-b", "x; drop schema meta", "1abc", "a".repeat(32)])
      await expect(ensureEntity(fx.db.sql, { name, customer: "axe" }, fx.ring)).rejects.toBeInstanceOf(DataError);
    await expect(ensureEntity(fx.db.sql, { name: "axe", customer: "other" }, fx.ring)).rejects.toThrow(
      /belongs to customer axe/,
    );
    const [count] = await fx.db.sql`select count(*)::int as n from pg_namespace where nspname like 'entity_%'`;
    expect(count!.n).toBe(1);
  });

  test("another login role on the same server cannot connect to frame's database; the app role can", async () => {
    fx = await dataFixture(["axe"]);
    const stranger = `stranger_${randomBytes(4).toString("hex")}`;
    const password = randomBytes(12).toString("base64url");
    await fx.db.sql.unsafe(`create role ${stranger} login password '${password}'`);
    const other = connect({ ...fx.db.target, user: stranger, password }, { max: 1 });
    try {
      // a neighbour's role would otherwise read the catalog and the statistics: entity names, row counts
      await expect(other`select count(*) from pg_catalog.pg_stat_user_tables`).rejects.toThrow(
        /permission denied for database/,
      );
    } finally {
      await other.end({ timeout: 5 });
      await fx.db.sql.unsafe(`drop role ${stranger}`);
    }
    expect((await fx.app`select 1 as one`)[0]!.one).toBe(1);
  });

  test("the app role's password never reaches the server's log, even with every statement logged", async () => {
    fx = await dataFixture(["axe"]);
    // A DBA's log_statement (ddl, or all with its bind parameters), on this database's sessions only.
    await fx.db.sql.unsafe(`alter database ${fx.db.target.database} set log_statement = 'all'`);
    const log = join((await testCluster()).dir, "postgres.log");
    const password = randomBytes(18).toString("base64url");
    const logged = readFileSync(log, "utf8").length;
    const owner = connect(fx.db.target, { max: 1 }); // a new session: it takes the setting, as serve's start does
    try {
      expect(await ensureAppRole(owner, password)).toBe(fx.appRole);
      await owner`select 'after ensureAppRole' as marker`;
    } finally {
      await owner.end({ timeout: 5 });
    }
    const app = connect({ ...fx.db.target, user: fx.appRole, password }, { max: 1 });
    try {
      expect((await app`select 1 as one`)[0]!.one).toBe(1); // the new password is the one that logs in
    } finally {
      await app.end({ timeout: 5 });
    }
    const written = readFileSync(log, "utf8").slice(logged);
    expect(written).toContain("after ensureAppRole"); // the statements were logged
    expect(written).toMatch(/alter role/i);
    expect(written).not.toContain(password);
  });

  test("the app role alone reads nothing; under one entity's role the other's schema is denied", async () => {
    fx = await dataFixture();
    await expect(fx.app`select * from entity_axe.records`).rejects.toThrow(/permission denied/);
    await expect(fx.app`select * from meta.data_keys where false`).resolves.toBeDefined();
    const own = await withEntity(fx.app, "axe", (tx) => tx`select count(*)::int as n from records`);
    expect(own[0]!.n).toBe(0);
    await expect(withEntity(fx.app, "axe", (tx) => tx`select * from entity_labs.records`)).rejects.toThrow(
      /permission denied for schema entity_labs/,
    );
    await expect(withEntity(fx.app, "axe", (tx) => tx`select * from meta.data_keys`)).rejects.toThrow(
      /permission denied/,
    );
    const superuser = fx.db.target.user;
    await expect(withEntity(fx.app, "axe", (tx) => tx`select set_config('role', ${superuser}, true)`)).rejects.toThrow(
      /permission denied/,
    );
    await expect(withEntity(fx.app, "nope", async () => 1)).rejects.toThrow(/does not exist/);
  });
});

describe("role names another role on the server took first (review 4)", () => {
  let cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
    cleanup = [];
  });

  test("a neighbour with CREATEROLE that made the app role's or an entity role's name first is refused, not handed the data", async () => {
    const db = await freshDatabase("squat");
    cleanup.push(() => db.drop());
    await migrate(db.sql);
    const keyPath = join(tempDir("axe-keys"), "master.key");
    initMasterKey(keyPath);
    const ring = new MasterKeyring(keyPath);
    const names = roleNames(db.target.database); // a digest of the database name: anyone can work it out
    // A neighbour on a shared server: its own login, allowed to make roles (a managed service's admin user).
    const neighbour = `neighbour_${randomBytes(4).toString("hex")}`;
    const password = randomBytes(12).toString("base64url");
    const root = connect(db.admin, { max: 1 });
    cleanup.push(() => root.end({ timeout: 5 }));
    await root.unsafe(`create role ${neighbour} login createrole password '${password}'`);
    cleanup.push(() =>
      root.unsafe(`drop owned by ${neighbour} cascade`).then(() => root.unsafe(`drop role ${neighbour}`)),
    );
    const squat = async (role: string) => {
      const theirs = connect({ ...db.admin, user: neighbour, password }, { max: 1 });
      try {
        await theirs.unsafe(`create role ${role} nologin`);
        await theirs.unsafe(`grant ${role} to ${neighbour}`);
      } finally {
        await theirs.end({ timeout: 5 });
      }
      cleanup.push(() => root.unsafe(`drop owned by ${role} cascade`).then(() => root.unsafe(`drop role ${role}`)));
    };

    // The entity role's name, taken first: frame must not fill it with the entity's rights.
    await squat(names.entity("axe"));
    await expect(ensureEntity(db.sql, { name: "axe", customer: "axe" }, ring)).rejects.toThrow(
      new RegExp(`${names.entity("axe")}.*${neighbour}`),
    );
    const [schemas] = await db.sql`select count(*)::int as n from pg_namespace where nspname = 'entity_axe'`;
    expect(schemas!.n).toBe(0);

    // The app role's name, taken first: frame must not log in as it, nor grant it any entity.
    await squat(names.app);
    await expect(ensureEntity(db.sql, { name: "labs", customer: "axe" }, ring)).rejects.toThrow(
      new RegExp(`${names.app}.*${neighbour}`),
    );
    await expect(ensureAppRole(db.sql, randomBytes(18).toString("base64url"))).rejects.toThrow(
      new RegExp(`${names.app}.*${neighbour}`),
    );
    const theirs = connect({ ...db.target, user: neighbour, password }, { max: 1 });
    cleanup.push(() => theirs.end({ timeout: 5 }));
    const reach = await theirs
      .begin(async (tx) => {
        await tx.unsafe(`set role ${names.app}`);
        await tx.unsafe(`set role ${names.entity("labs")}`);
        return tx.unsafe("select count(*) from entity_labs.records");
      })
      .then(
        () => "read entity_labs",
        (error: Error) => error.message,
      );
    expect(reach).not.toBe("read entity_labs");
  });
});
