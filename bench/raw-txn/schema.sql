-- The tables of the raw paid-order transaction (bench/raw-txn), shaped like
-- Agora's own (catalog listings, orders, order_items, ledger_entries,
-- outbox_events) with their keys, CHECKs and indexes, minus the columns the
-- transaction never writes. The same text runs on SQLite and PostgreSQL;
-- @SEQ@ is replaced by the outbox sequence column of each
-- ("INTEGER PRIMARY KEY" / "BIGSERIAL PRIMARY KEY"), as in src/core/events.
DROP TABLE IF EXISTS outbox_events;
DROP TABLE IF EXISTS ledger_entries;
DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS listings;
CREATE TABLE listings (
  id TEXT PRIMARY KEY,
  seller_id TEXT NOT NULL,
  price_amount BIGINT NOT NULL CHECK (price_amount >= 0),
  quantity BIGINT NOT NULL CHECK (quantity >= 0),
  version BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  checkout_id TEXT NOT NULL,
  buyer_id TEXT NOT NULL,
  seller_id TEXT NOT NULL,
  status TEXT NOT NULL,
  currency TEXT NOT NULL,
  subtotal BIGINT NOT NULL CHECK (subtotal > 0),
  commission_bps BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  paid_at_ms BIGINT NOT NULL
);
CREATE INDEX orders_buyer ON orders (buyer_id, created_at_ms, id);
CREATE INDEX orders_seller ON orders (seller_id, created_at_ms, id);
CREATE INDEX orders_checkout ON orders (checkout_id);
CREATE INDEX orders_status ON orders (status, updated_at_ms);
CREATE TABLE order_items (
  order_id TEXT NOT NULL REFERENCES orders (id),
  listing_id TEXT NOT NULL,
  title TEXT NOT NULL,
  unit_price BIGINT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  category_id TEXT NOT NULL,
  PRIMARY KEY (order_id, listing_id)
);
CREATE TABLE ledger_entries (
  transaction_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  PRIMARY KEY (transaction_id, seq)
);
CREATE INDEX ledger_entries_account_currency ON ledger_entries (account, currency);
CREATE TABLE outbox_events (
  seq @SEQ@,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  payload TEXT NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  published_at_ms BIGINT
);
CREATE INDEX outbox_events_unpublished ON outbox_events (seq) WHERE published_at_ms IS NULL;
