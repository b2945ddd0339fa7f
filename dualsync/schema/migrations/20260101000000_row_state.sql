-- Purpose: the idempotency gate of the apply path: latest applied version (or tombstone) per (entity, key)
-- Ticket: n/a
-- Reversible: yes
-- Rollback: drops dualsync.row_state; the next apply re-creates state from the streams
create schema if not exists dualsync;
create table dualsync.row_state (
  entity text not null,
  key text not null,
  version bigint not null,
  deleted boolean not null default false,
  canon_hash bytea,
  event_id text,
  applied_at timestamptz not null default now(),
  primary key (entity, key)
) with (fillfactor = 90);
comment on table dualsync.row_state is
  'Version gate: an event applies only if its version is greater; deletes leave tombstones.';
-- down
drop table dualsync.row_state;
