/**
 * A migrated database with entities made by the owner (superuser) connection, and a pool that
 * logs in as the app role, the way serve connects. Keys live in a temp secrets directory.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { connect, type Sql } from "../../../src/db/connect.ts";
import { migrate } from "../../../src/db/migrate.ts";
import { DataKeyCache } from "../../../src/frame/crypto/data-keys.ts";
import { initMasterKey, MasterKeyring } from "../../../src/frame/crypto/master-key.ts";
import { ensureAppRole, ensureEntity } from "../../../src/frame/store/entities.ts";
import { freshDatabase, type TestDatabase } from "../../helpers/postgres.ts";
import { tempDir } from "../../helpers/tmp.ts";

export interface DataFixture {
  db: TestDatabase;
  /** Logged in as the app role: no rights of its own, SET ROLE into entity roles. */
  app: Sql;
  appRole: string;
  /** The app role's password, for another pool that logs in the same way (a pipe). */
  appPassword: string;
  keyPath: string;
  ring: MasterKeyring;
  keys: DataKeyCache;
  close(): Promise<void>;
}

export async function dataFixture(entities = ["axe", "labs"]): Promise<DataFixture> {
  const db = await freshDatabase("data");
  await migrate(db.sql);
  const keyPath = join(tempDir("axe-keys"), "master.key");
  initMasterKey(keyPath);
  const ring = new MasterKeyring(keyPath);
  for (const name of entities) await ensureEntity(db.sql, { name, customer: "axe" }, ring);
  const password = randomBytes(18).toString("base64url");
  const appRole = await ensureAppRole(db.sql, password);
  const app = connect({ ...db.target, user: appRole, password }, { max: 8 });
  return {
    db,
    app,
    appRole,
    appPassword: password,
    keyPath,
    ring,
    keys: new DataKeyCache(ring),
    async close() {
      await app.end({ timeout: 5 });
      await db.drop();
    },
  };
}
