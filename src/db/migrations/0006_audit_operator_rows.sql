-- Rows that record an operator's action come from the database owner only (the connection that
-- migrates, creates entities, rotates keys, issues tokens and archives). Operator actions are named
-- with a space (`entity create`, `token issue`, `audit archive`), MCP tools never are; an archive
-- cut is a detail with `archive`. The app role appends tool calls and refusals and may not write a
-- row that claims an operator did something, in meta's log or (as an entity role) in an entity's.
create or replace function meta.audit_operator_rows() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  if (new.tool like '% %' or coalesce(to_jsonb(new) -> 'detail' ? 'archive', false))
     and not pg_has_role(current_user, (select c.relowner from pg_class c where c.oid = tg_relid), 'MEMBER') then
    raise exception '%.%: only the database owner records operator actions (tool %, by %)',
      tg_table_schema, tg_table_name, coalesce(new.tool, 'none'), current_user
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;

-- Named to fire before audit_chain (triggers fire in name order): a forged row never takes the chain's lock.
create or replace trigger audit_author before insert on meta.audit_log
  for each row execute function meta.audit_operator_rows();

do $$
declare
  log regclass;
begin
  for log in select to_regclass(format('%I.audit_log', 'entity_' || name)) from meta.entities loop
    if log is not null then
      execute format('create or replace trigger audit_author before insert on %s
                      for each row execute function meta.audit_operator_rows()', log);
    end if;
  end loop;
end
$$;
