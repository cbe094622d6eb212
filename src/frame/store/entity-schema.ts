/**
 * The tables of one entity, in schema entity_<name>, owned by the migrating (owner) role. The
 * entity's own role gets exactly what tool calls need: read and write collections and records,
 * append to record_versions and audit_log, never UPDATE or DELETE those two.
 */
import type { Tx } from "./queryable.ts";

/** Creates (or completes) the schema and its tables; safe to run again. */
export async function createEntitySchema(tx: Tx, schema: string, role: string): Promise<void> {
  const s = (table: string) => tx(`${schema}.${table}`);
  await tx`create schema if not exists ${tx(schema)}`;
  await tx`revoke all on schema ${tx(schema)} from public`;
  await tx`create table if not exists ${s("collections")} (
    name        text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    definition  jsonb not null,
    version     int not null default 1,
    created_at  timestamptz not null default now(),
    created_by  text not null,
    updated_at  timestamptz not null default now(),
    updated_by  text not null)`;
  await tx`create table if not exists ${s("records")} (
    id          uuid primary key,
    pos         bigint generated always as identity unique,
    collection  text not null references ${s("collections")} (name),
    version     int not null,
    data        jsonb not null,
    pii         jsonb not null default '{}',
    blind       text[] not null default '{}',
    search      tsvector,
    created_at  timestamptz not null default now(),
    created_by  text not null,
    updated_at  timestamptz not null default now(),
    updated_by  text not null,
    deleted_at  timestamptz)`;
  await tx`create index if not exists records_collection_pos on ${s("records")} (collection, pos)`;
  await tx`create index if not exists records_data on ${s("records")} using gin (data jsonb_path_ops)`;
  await tx`create index if not exists records_blind on ${s("records")} using gin (blind)`;
  await tx`create index if not exists records_search on ${s("records")} using gin (search)`;
  await tx`create table if not exists ${s("record_versions")} (
    record_id   uuid not null references ${s("records")} (id),
    version     int not null,
    op          text not null check (op in ('create', 'update', 'delete')),
    data        jsonb not null,
    pii         jsonb not null,
    changed_at  timestamptz not null default now(),
    changed_by  text not null,
    primary key (record_id, version))`;
  await tx`create table if not exists ${s("audit_log")} (like meta.audit_log including all)`;
  await tx`select meta.audit_chain_install(${schema})`; // its own chain trigger (migration 5)
  await tx`create or replace trigger audit_author before insert on ${s("audit_log")}
           for each row execute function meta.audit_operator_rows()`; // no forged operator rows (migration 6)
  await tx`create or replace trigger audit_append_only before update or delete on ${s("audit_log")}
           for each row execute function meta.audit_refuse_change()`;
  await tx`create or replace trigger audit_no_truncate before truncate on ${s("audit_log")}
           for each statement execute function meta.audit_refuse_change()`;
  await tx`create or replace trigger record_versions_append_only before update or delete on ${s("record_versions")}
           for each row execute function meta.audit_refuse_change()`;

  await tx`grant usage on schema ${tx(schema)} to ${tx(role)}`;
  await tx`grant select, insert, update on ${s("collections")}, ${s("records")} to ${tx(role)}`;
  await tx`grant select, insert on ${s("record_versions")}, ${s("audit_log")} to ${tx(role)}`;
}
