-- The meta schema: what the appliance knows about itself. Entity data lives in entity_<name>.
create schema if not exists meta;

create table if not exists meta.entities (
  name        text primary key check (name ~ '^[a-z][a-z0-9_]{0,30}$'),
  customer    text not null,
  created_at  timestamptz not null default now()
);
