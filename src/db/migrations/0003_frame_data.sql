-- frame data: per-entity data keys wrapped by the machine's master key, the role each entity's
-- tool calls run as, and the append-only, hash-chained audit log (meta's own copy holds refused
-- requests that belong to no entity; every entity_<name>.audit_log is created LIKE it).
alter table meta.entities add column if not exists role_name text;

create table if not exists meta.data_keys (
  entity         text not null references meta.entities (name),
  purpose        text not null check (purpose in ('pii', 'blind')),
  wrapped        bytea not null,
  master_key_id  text not null,
  created_at     timestamptz not null default now(),
  rewrapped_at   timestamptz,
  primary key (entity, purpose)
);

create table if not exists meta.audit_log (
  seq          bigint not null unique,
  at           timestamptz not null,
  who          text not null,
  token_kind   text,
  reason       text,
  customer     text,
  entity       text,
  tool         text,
  outcome      text not null check (outcome in ('ok', 'error', 'denied', 'refused')),
  status       int,
  duration_ms  int not null,
  args_digest  text,
  request_id   text,
  prev_hash    text not null,
  hash         text not null
);

-- The chain: hash = sha256 over the previous hash and every column, in a fixed order.
create or replace function meta.audit_hash(
  prev_hash text, seq bigint, at timestamptz, who text, token_kind text, reason text, customer text,
  entity text, tool text, outcome text, status int, duration_ms int, args_digest text, request_id text
) returns text language sql stable set search_path = pg_catalog as $$
  select encode(sha256(convert_to(jsonb_build_array(
    prev_hash, seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), who, token_kind, reason,
    customer, entity, tool, outcome, status, duration_ms, args_digest, request_id)::text, 'UTF8')), 'hex')
$$;

-- Links each new row to the last one under a per-table lock; seq is assigned here, so the chain
-- order is the commit order even when ids would interleave. Security definer: entity roles have
-- no rights on meta, yet their inserts must be chained.
create or replace function meta.audit_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog as $$
declare
  last_seq bigint;
  last_hash text;
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || tg_table_name));
  execute format('select seq, hash from %I.%I order by seq desc limit 1', tg_table_schema, tg_table_name)
    into last_seq, last_hash;
  new.seq := coalesce(last_seq, 0) + 1;
  new.prev_hash := coalesce(last_hash, repeat('0', 64));
  new.hash := meta.audit_hash(new.prev_hash, new.seq, new.at, new.who, new.token_kind, new.reason, new.customer,
    new.entity, new.tool, new.outcome, new.status, new.duration_ms, new.args_digest, new.request_id);
  return new;
end
$$;

create or replace function meta.audit_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;

create or replace trigger audit_chain before insert on meta.audit_log
  for each row execute function meta.audit_chain();
create or replace trigger audit_append_only before update or delete on meta.audit_log
  for each row execute function meta.audit_refuse_change();
create or replace trigger audit_no_truncate before truncate on meta.audit_log
  for each statement execute function meta.audit_refuse_change();
