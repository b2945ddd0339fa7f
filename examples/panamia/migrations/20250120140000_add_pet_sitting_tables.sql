-- Purpose: Enable pet-sitting sidecar with listings and bookings
-- Ticket: PANA-42
-- Reversible: yes
-- Rollback: drop bookings, then listings (see the down section)
--
-- The roadmap's other header fields:
-- Migration: add_pet_sitting_tables
-- Dependencies: users (init_users_and_auth), btree_gist (enable_btree_gist)
-- Data Migration: separate script (dualsync backfill of the listings and bookings collections)
--
-- Double booking is impossible by construction: the exclusion constraint rejects a second
-- booking of a listing whose [start_date, end_date) range overlaps a live one, atomically,
-- with no check-then-insert window. Half-open ranges let one stay end the day the next
-- begins. Cancelled bookings free their slot (the constraint's WHERE).
--
-- Choices the roadmap leaves open, made here:
-- * start_date/end_date keep the model's names but are timestamptz (the model says DateTime);
-- * money is numeric(12, 2) (the model says Decimal; Prisma's default scale of 30 is not
--   money), never negative; a stay ends after it starts;
-- * status stays text (the model says String, default 'pending'), as in the roadmap;
-- * listings and bookings keep their users (no cascade): deleting a user with bookings
--   must be an explicit decision, not a side effect.

create table listings (
  id             text primary key,
  sitter_id      text not null references users (id),
  title          text not null,
  description    text,
  price_per_day  numeric(12, 2) not null,
  available      boolean not null default true,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null,
  constraint listings_price_per_day_check check (price_per_day >= 0)
);
create index listings_sitter_id_idx on listings (sitter_id);

create table bookings (
  id           text primary key,
  listing_id   text not null references listings (id),
  owner_id     text not null references users (id),
  sitter_id    text not null references users (id),
  start_date   timestamptz not null,
  end_date     timestamptz not null,
  status       text not null default 'pending',
  total_price  numeric(12, 2) not null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null,
  constraint bookings_total_price_check check (total_price >= 0),
  constraint bookings_dates_check check (end_date > start_date),
  constraint bookings_no_double_booking exclude using gist (
    listing_id with =,
    tstzrange(start_date, end_date, '[)') with &&
  ) where (status <> 'cancelled')
);
create index bookings_owner_id_idx on bookings (owner_id);
create index bookings_sitter_id_idx on bookings (sitter_id);

-- down
drop table if exists bookings;
drop table if exists listings;
