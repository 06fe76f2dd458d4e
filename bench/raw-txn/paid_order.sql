-- One paid order as one transaction (pgbench script; bench/raw-txn/run).
-- Variables from pgbench -D: sellers (each has listings 2s and 2s+1).
-- The stock of the order's two listings (one statement, CHECK quantity >= 0),
-- the order, its two items, three ledger entries (buyer, escrow, commission;
-- they sum to zero) and one outbox row. pgbench reads ":name" as a variable
-- even inside a string literal, hence chr(58) for the colon and
-- json_build_object for the outbox payload.
\set s random(0, :sellers - 1)
\set n random(1, 9000000000000000000)
\set now 1790000000000
BEGIN;
UPDATE listings SET quantity = quantity - 1, version = version + 1, updated_at_ms = :now
  WHERE id IN ('lst_' || CAST(2 * :s AS TEXT), 'lst_' || CAST(2 * :s + 1 AS TEXT));
INSERT INTO orders (id, checkout_id, buyer_id, seller_id, status, currency, subtotal, commission_bps,
                    created_at_ms, updated_at_ms, paid_at_ms)
  VALUES ('ord_' || CAST(:n AS TEXT), 'chk_' || CAST(:n AS TEXT), 'usr_b' || CAST(:client_id AS TEXT), 'usr_s' || CAST(:s AS TEXT), 'paid', 'EUR', 3998, 1000,
          :now, :now, :now);
INSERT INTO order_items (order_id, listing_id, title, unit_price, quantity, category_id)
  VALUES ('ord_' || CAST(:n AS TEXT), 'lst_' || CAST(2 * :s AS TEXT), 'Bench item A', 1999, 1, 'cat_bench');
INSERT INTO order_items (order_id, listing_id, title, unit_price, quantity, category_id)
  VALUES ('ord_' || CAST(:n AS TEXT), 'lst_' || CAST(2 * :s + 1 AS TEXT), 'Bench item B', 1999, 1, 'cat_bench');
INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency)
  VALUES ('ltx_' || CAST(:n AS TEXT), 0, 'buyer_payments', -3998, 'EUR');
INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency)
  VALUES ('ltx_' || CAST(:n AS TEXT), 1, 'escrow' || chr(58) || 'ord_' || CAST(:n AS TEXT), 3599, 'EUR');
INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency)
  VALUES ('ltx_' || CAST(:n AS TEXT), 2, 'commission', 399, 'EUR');
INSERT INTO outbox_events (id, type, source, payload, occurred_at_ms)
  VALUES ('evt_' || CAST(:n AS TEXT), 'order.paid', 'orders',
          json_build_object('order_id', 'ord_' || CAST(:n AS TEXT), 'seller_id', 'usr_s' || CAST(:s AS TEXT),
                            'amount', 3998, 'currency', 'EUR')::text, :now);
END;
