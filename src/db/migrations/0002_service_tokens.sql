-- Service tokens (the appliance's own bearer tokens for automation and the operator). Only an
-- HMAC-SHA256 of each token is stored, keyed by secrets/token.key; the token itself is shown once.
create table if not exists meta.service_tokens (
  id            text primary key check (id ~ '^st_[0-9a-f]{12}$'),
  name          text not null check (length(name) between 1 and 64),
  customer      text not null,
  entity        text not null check (entity ~ '^[a-z][a-z0-9_]{0,30}$'),
  role          text not null check (role in ('reader', 'writer', 'admin')),
  hmac          text not null unique,
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
