-- Purpose: the plan's optional system_logs table, for the LogManager's structured log lines
-- Ticket: WS4 task 4.3 (phase-4-task-03-db-plan.md)
-- Reversible: yes
-- Rollback: drop table system_logs (see the down section); the log files on disk are untouched
--
-- A file of its own because the plan marks the table optional: it can be rolled back
-- without touching the chat data.
--
-- The plan's "Partition by date for performance" is not done here: a partitioned table's
-- primary key must include the partition column, so `id uuid primary key` would have to
-- become (id, created_at). That is a schema change the plan does not spell out; a later
-- migration can partition when log volume asks for it.

create table system_logs (
  id           uuid primary key default gen_random_uuid(),
  level        varchar(20) not null,
  message      text not null,
  context      jsonb default '{}',
  trace_id     varchar(255),
  ip_address   inet,
  user_agent   text,
  request_uri  text,
  created_at   timestamp with time zone default now()
);

-- down
drop table if exists system_logs;
