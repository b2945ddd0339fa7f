-- Purpose: btree_gist lets one GiST exclusion constraint combine listing_id equality with time-range overlap (double-booking prevention)
-- Ticket: PANA-42
-- Reversible: yes
-- Rollback: drop extension btree_gist (see the down section)
--
-- The roadmap's other header fields:
-- Migration: enable_btree_gist

create extension if not exists btree_gist;

-- down
drop extension if exists btree_gist;
