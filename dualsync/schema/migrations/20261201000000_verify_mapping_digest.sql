-- Purpose: each verify run records a digest of the entity's mapping, so readiness can tell whether the mapping changed since the last full sweep
-- Ticket: n/a
-- Reversible: yes
-- Rollback: the down section drops the column; readiness then cannot pass its mapping gate until re-migrated and re-swept
alter table dualsync.verify_runs add column mapping_digest text;
comment on column dualsync.verify_runs.mapping_digest is
  'sha256 of the canonical JSON of the entity''s mapping the run compared with (null: unknown)';
-- down
alter table dualsync.verify_runs drop column mapping_digest;
