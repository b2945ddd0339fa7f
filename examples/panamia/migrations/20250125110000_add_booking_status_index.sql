-- Purpose: booking queues filter by status (e.g. the roadmap's WHERE b.status = 'pending' join)
-- Ticket: PANA-42
-- Reversible: yes
-- Rollback: drop index bookings_status_idx (see the down section)
-- Phase: post-load
--
-- The roadmap's other header fields:
-- Migration: add_booking_status_index

create index bookings_status_idx on bookings (status, start_date);

-- down
drop index if exists bookings_status_idx;
