-- Purpose: what the verifier records: canonical-form version, confirmed drift per class, value fingerprints (never raw values), and the audit of repairs
-- Ticket: n/a
-- Reversible: yes
-- Rollback: the down section drops the added columns and the repairs table
alter table dualsync.verify_runs
  add column canon_version integer not null default 1,
  add column samples_requested integer,
  add column seed bigint,
  add column drift integer not null default 0,
  add column drift_rate double precision;
alter table dualsync.verify_findings drop constraint verify_findings_kind_check;
alter table dualsync.verify_findings
  add constraint verify_findings_kind_check
    check (kind in ('missing_in_target', 'extra_in_target', 'mismatch', 'in_flight')),
  add column confirmed boolean not null default false,
  add column legacy_fp text,
  add column pg_fp text;
create index verify_findings_confirmed on dualsync.verify_findings (entity, run_id) where confirmed;
create table dualsync.repairs (
  id bigserial primary key,
  run_id bigint references dualsync.verify_runs (id) on delete set null,
  entity text not null,
  key text not null,
  action text not null check (action in ('upsert', 'delete')),
  version bigint not null,
  event_id text not null,
  repaired_by text not null,
  repaired_at timestamptz not null default now()
);
create index repairs_entity_key on dualsync.repairs (entity, key);
-- down
drop table dualsync.repairs;
drop index dualsync.verify_findings_confirmed;
alter table dualsync.verify_findings
  drop column pg_fp, drop column legacy_fp, drop column confirmed,
  drop constraint verify_findings_kind_check;
alter table dualsync.verify_findings
  add constraint verify_findings_kind_check
    check (kind in ('missing', 'extra', 'mismatch', 'in_flight', 'drift'));
alter table dualsync.verify_runs
  drop column drift_rate, drop column drift, drop column seed, drop column samples_requested,
  drop column canon_version;
