-- Purpose: audit trail of read-path flips and rollbacks per entity
-- Ticket: n/a
-- Reversible: yes
-- Rollback: drops the audit trail (export it first if it matters)
create table dualsync.cutover_log (
  id bigserial primary key,
  entity text not null,
  from_mode text not null check (from_mode in ('legacy', 'shadow', 'postgres')),
  to_mode text not null check (to_mode in ('legacy', 'shadow', 'postgres')),
  actor text not null,
  reason text,
  forced boolean not null default false,
  readiness jsonb,
  at timestamptz not null default now()
);
create index cutover_log_entity_at on dualsync.cutover_log (entity, at desc);
-- down
drop table dualsync.cutover_log;
