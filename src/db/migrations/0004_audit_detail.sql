-- Audit rows that summarise carry a jsonb detail: the subject of a write (record and version), a
-- tally of anonymous refusals (count, first and last seen, sample of sources), an archive cut.
-- Expand only: the hash covers detail only when it is present, so every earlier row keeps its
-- hash, and the previous release (whose inserts never set detail) chains exactly as before.
alter table meta.audit_log add column if not exists detail jsonb;

do $$
declare
  log regclass;
begin
  for log in select to_regclass(format('%I.audit_log', 'entity_' || name)) from meta.entities loop
    if log is not null then
      execute format('alter table %s add column if not exists detail jsonb', log);
    end if;
  end loop;
end
$$;

-- The hash of a row with detail: the same array as meta.audit_hash with detail appended.
create or replace function meta.audit_hash(
  prev_hash text, seq bigint, at timestamptz, who text, token_kind text, reason text, customer text,
  entity text, tool text, outcome text, status int, duration_ms int, args_digest text, request_id text,
  detail jsonb
) returns text language sql stable set search_path = pg_catalog as $$
  select case when detail is null
    then meta.audit_hash(prev_hash, seq, at, who, token_kind, reason, customer, entity, tool, outcome, status,
                         duration_ms, args_digest, request_id)
    else encode(sha256(convert_to(jsonb_build_array(
      prev_hash, seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), who, token_kind, reason,
      customer, entity, tool, outcome, status, duration_ms, args_digest, request_id, detail)::text, 'UTF8')), 'hex')
  end
$$;

-- The chain trigger, now hashing detail too. It reads detail through to_jsonb so that a log made
-- while this migration was pending (without the column) still chains; a JSON null is no detail.
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
    new.entity, new.tool, new.outcome, new.status, new.duration_ms, new.args_digest, new.request_id,
    nullif(to_jsonb(new) -> 'detail', 'null'::jsonb));
  return new;
end
$$;

-- `audit archive` removes the oldest rows of meta.audit_log, in the transaction that appends the
-- row recording the cut, and only the rows it names (axe.audit_archive_through). Everything else
-- stays refused: other deletes, any update, truncate, and every delete from record_versions.
create or replace function meta.audit_refuse_change() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' and tg_table_schema = 'meta' and tg_table_name = 'audit_log' then
    if old.seq <= coalesce(nullif(current_setting('axe.audit_archive_through', true), '')::bigint, 0) then
      return old;
    end if;
  end if;
  raise exception '%.% is append-only: % refused', tg_table_schema, tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end
$$;
