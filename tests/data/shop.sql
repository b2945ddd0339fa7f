create schema if not exists shop;
create type shop.customer_tier as enum ('free', 'pro');
create table shop.customers (
  id text primary key,
  email text not null,
  tier shop.customer_tier,
  profile jsonb,
  api_token text,
  created_at timestamptz,
  constraint email_has_at check (email like '%@%')
);
create table shop.orders (
  id text primary key,
  customer_id text not null references shop.customers (id),
  total numeric(12, 2),
  note varchar(40)
);
create table shop.order_items (
  order_id text not null references shop.orders (id) on delete cascade,
  position int not null,
  sku text not null,
  qty int not null check (qty > 0),
  primary key (order_id, position)
);
