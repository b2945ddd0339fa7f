-- Purpose: verifier runs and their findings (drift reports)
-- Ticket: n/a
-- Reversible: yes
-- Rollback: drops the verifier history
create table dualsync.verify_runs (
  id bigserial primary key,
  entity text not null,
  mode text not null check (mode in ('sample', 'sweep')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  sampled integer not null default 0,
  matched integer not null default 0,
  missing integer not null default 0,
  extra integer not null default 0,
  mismatched integer not null default 0,
  in_flight integer not null default 0,
  drift_upper_bound double precision,
  confidence double precision not null default 0.95,
  status text not null default 'running',
  details jsonb
);
create index verify_runs_entity_started on dualsync.verify_runs (entity, started_at desc);
create table dualsync.verify_findings (
  id bigserial primary key,
  run_id bigint not null references dualsync.verify_runs (id) on delete cascade,
  entity text not null,
  key text not null,
  kind text not null check (kind in ('missing', 'extra', 'mismatch', 'in_flight', 'drift')),
  fields jsonb,
  legacy_version bigint,
  pg_version bigint,
  generation integer not null default 0,
  first_seen_at timestamptz not null default now(),
  confirmed_at timestamptz
);
create index verify_findings_entity_kind on dualsync.verify_findings (entity, kind);
create index verify_findings_run on dualsync.verify_findings (run_id);
-- down
drop table dualsync.verify_findings;
drop table dualsync.verify_runs;
