/**
 * Entities: one schema and one database role each, plus their data keys. `ensureEntity` runs with
 * the owner connection (the one that migrates); tool calls later run as the app login role, which
 * may only SET ROLE into entity roles and inherits nothing from them.
 *
 * @example
 * await ensureEntity(ownerSql, { name: "axe", customer: "axe" }, ring);
 */
import type { Sql } from "../../db/connect.ts";
import { setRolePassword } from "../../db/role-password.ts";
import { DatabaseError } from "../../lib/errors.ts";
import type { AuditEvent } from "../audit-sink.ts";
import { ensureDataKeys } from "../crypto/data-keys.ts";
import type { MasterKeyring } from "../crypto/master-key.ts";
import { auditColumns } from "./audit.ts";
import { createEntitySchema } from "./entity-schema.ts";
import { DataError } from "./errors.ts";
import { assertEntityName, entitySchema, roleNames } from "./names.ts";
import type { Tx } from "./queryable.ts";

export interface EntityRow {
  name: string;
  customer: string;
  role: string;
  createdAt: Date;
}

const LOCK = "axe-appliance:entities";

export async function databaseRoles(sql: Tx) {
  const [row] = await sql<{ db: string }[]>`select current_database() as db`;
  return roleNames(row!.db);
}

async function roleExists(tx: Tx, role: string): Promise<boolean> {
  const [row] = await tx`select 1 as present from pg_roles where rolname = ${role}`;
  return Boolean(row);
}

/**
 * Refuses a role of ours that someone else could act as: role names are worked out from the
 * database name, so a neighbour on a shared server allowed to make roles can make one first (or,
 * on PostgreSQL <= 15, join one later) and be handed every right frame gives it. Its members may be
 * only `allowed` and the connection making it (PostgreSQL 16 makes the creator a member), and an
 * entity role may not log in. Checked on every start, before any right is granted to it.
 */
async function assertOurRole(tx: Tx, role: string, allowed: readonly string[], login: boolean): Promise<void> {
  const [row] = await tx<{ login: boolean; members: string[] }[]>`
    select r.rolcanlogin as login,
           coalesce(array_agg(m.rolname order by m.rolname) filter (
             where m.rolname is not null and m.rolname <> current_user and m.rolname <> all(${allowed}::text[])), '{}') as members
    from pg_catalog.pg_roles r
    left join pg_catalog.pg_auth_members a on a.roleid = r.oid
    left join pg_catalog.pg_roles m on m.oid = a.member
    where r.rolname = ${role}
    group by r.rolcanlogin`;
  if (!row) return;
  const problems = [
    ...(row.members.length ? [`its members ${row.members.join(", ")} can act as it`] : []),
    ...(row.login && !login ? ["it can log in"] : []),
  ];
  if (problems.length)
    throw new DatabaseError(
      "DATABASE_ROLE_NOT_OURS",
      `role ${role} exists and is not frame's alone: ${problems.join("; ")}; it would be given an entity's data`,
      "another role on this server made or joined it; revoke it from those members (and, for an entity role, make it NOLOGIN) or drop it, then start again; on a shared server use PostgreSQL 16 or later and give neighbours no CREATEROLE",
    );
}

/** Creates the entity if it is new, completes it if it is half made; returns whether it was new. */
export async function ensureEntity(
  owner: Sql,
  entity: { name: string; customer: string },
  ring: MasterKeyring,
  /** Recorded in meta.audit_log, in the creating transaction, when the entity is new. */
  who = "frame",
): Promise<boolean> {
  const name = assertEntityName(entity.name);
  ring.current(); // fail before any DDL when there is no usable master key
  const started = performance.now();
  return owner.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCK}))`;
    const roles = await databaseRoles(tx);
    const role = roles.entity(name);
    const [existing] = await tx<{ customer: string }[]>`select customer from meta.entities where name = ${name}`;
    if (existing && existing.customer !== entity.customer)
      throw new DataError(
        "invalid_input",
        `entity ${name} already belongs to customer ${existing.customer}, not ${entity.customer}`,
        "pick another entity name in customers.yaml",
      );
    if (!(await roleExists(tx, role))) await tx`create role ${tx(role)} nologin noinherit`;
    await assertOurRole(tx, role, [roles.app], false);
    await assertOurRole(tx, roles.app, [], true);
    await createEntitySchema(tx, entitySchema(name), role);
    await tx`insert into meta.entities (name, customer, role_name) values (${name}, ${entity.customer}, ${role})
             on conflict (name) do update set role_name = excluded.role_name`;
    await ensureDataKeys(tx, name, ring);
    if (await roleExists(tx, roles.app)) await tx`grant ${tx(role)} to ${tx(roles.app)}`;
    if (!existing) {
      const row: AuditEvent = {
        at: new Date(),
        who,
        customer: entity.customer,
        entity: name,
        tool: "entity create",
        outcome: "ok",
        durationMs: performance.now() - started,
        detail: { entity: name, schema: entitySchema(name) },
      };
      await tx`insert into meta.audit_log ${tx(auditColumns(row))}`;
    }
    return !existing;
  });
}

export async function listEntities(sql: Tx): Promise<EntityRow[]> {
  const rows = await sql<{ name: string; customer: string; role_name: string | null; created_at: Date }[]>`
    select name, customer, role_name, created_at from meta.entities order by name`;
  return rows.map((r) => ({ name: r.name, customer: r.customer, role: r.role_name ?? "", createdAt: r.created_at }));
}

/**
 * The login role the server connects as: it can SET ROLE to every entity role, reads meta, and
 * appends to meta.audit_log; it owns nothing and inherits no entity's rights.
 */
export async function ensureAppRole(owner: Sql, password: string): Promise<string> {
  return owner.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCK}))`;
    const roles = await databaseRoles(tx);
    if (!(await roleExists(tx, roles.app))) await tx`create role ${tx(roles.app)} login noinherit`;
    await assertOurRole(tx, roles.app, [], true);
    await setRolePassword(tx, roles.app, password); // its SCRAM secret: the clear text would reach the server's log
    // Every role may connect to a new database: on a shared server a neighbour's role would read the
    // catalog and the statistics views (entity names, row counts). Only the owner and the app log in here.
    const [here] = await tx<{ db: string }[]>`select current_database() as db`;
    await tx`revoke connect on database ${tx(here!.db)} from public`;
    await tx`grant connect on database ${tx(here!.db)} to ${tx(roles.app)}`;
    await tx`grant usage on schema meta to ${tx(roles.app)}`;
    await tx`grant select on all tables in schema meta to ${tx(roles.app)}`;
    await tx`grant insert on meta.audit_log to ${tx(roles.app)}`;
    if ((await tx`select to_regclass('meta.service_tokens') is not null as present`)[0]?.present)
      await tx`grant update (last_used_at) on meta.service_tokens to ${tx(roles.app)}`;
    const entities = await tx<{ role_name: string }[]>`select role_name from meta.entities where role_name is not null`;
    for (const { role_name } of entities) {
      await assertOurRole(tx, role_name, [roles.app], false);
      await tx`grant ${tx(role_name)} to ${tx(roles.app)}`;
    }
    return roles.app;
  });
}
