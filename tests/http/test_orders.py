"""Checkout, orders and money against the real server, on SQLite and PostgreSQL.

The journey: a seller lists, a buyer finds the listing through search, adds it
to the cart, tokenizes a card at the sandbox gateway, checks out with an
Idempotency-Key; the charge lands in escrow (the sandbox's signed webhook
confirms it too); the seller ships, the buyer confirms delivery, the escrow is
released to the seller's payable balance minus commission, and a payout pays
it out. The ledger is checked with `agora ledger verify` and the seller's
balance along the way.

Servers here run with --order-dispute-window-days 0 (delivery completes an
order at once) and --payout-interval 0 (payouts only on an admin's request),
so each step is observable. Where the contract is silent these tests assume:
a checkout answers 201 with the payment's outcome inside it whatever the
outcome (a declined card is `payment.status: failed`, the orders cancelled);
list answers hold `data` and `next_cursor` like the catalog's.
"""

import concurrent.futures
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import unittest

from tests.http import fake_stripe
from tests.http.fake_stripe import FakeStripe
from tests.http.agora import (ProblemAssertions, Server, create_listing, leaf_categories, pg_url, run_agora,
                              wait_until)

PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
YEAR = time.gmtime().tm_year
ADDRESS = {"name": "Bea Buyer", "line1": "Hauptstrasse 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
SUCCEED = "4242424242424242"
DECLINE = "4000000000000002"
NO_FUNDS = "4000000000009995"
AUTHENTICATE = "4000002500003155"
NETWORK_ERROR = "4000000000000119"
SERVER_ARGS = ("--login-max-failures", "1000", "--order-dispute-window-days", "0", "--payout-interval", "0")


def eur(amount):
    return {"amount": amount, "currency": "EUR"}


def key():
    return "test-" + secrets.token_hex(12)


class Journey(ProblemAssertions):
    """Helpers shared by the suites below; `server` is set by setUpClass."""

    server = None

    def tokenize(self, number=SUCCEED):
        r = self.server.request("POST", "/sandbox/v1/tokens",
                                {"card_number": number, "exp_month": 12, "exp_year": YEAR + 2, "cvc": "123"})
        self.assertEqual(r.status, 200, r)
        return r.body["id"]

    def listing(self, seller=None, quantity=3, price=2500, currency="EUR", title=None):
        seller = seller or self.seller
        extra = {"title": title} if title else {}
        return create_listing(self.server, seller, self.category, publish=True, quantity=quantity,
                              price={"amount": price, "currency": currency}, **extra)

    def add(self, buyer, listing, quantity=1, expect=(200, 201)):
        r = self.server.request("POST", "/v1/cart/items", {"product_id": listing["id"], "quantity": quantity},
                                headers=buyer.auth())
        self.assertIn(r.status, expect, r)
        return r

    def checkout(self, buyer, token, idem=None, address=ADDRESS, headers=None):
        h = dict(buyer.auth())
        if idem is not False:
            h["Idempotency-Key"] = idem or key()
        h.update(headers or {})
        return self.server.request("POST", "/v1/checkout", {"payment_token": token, "shipping_address": address},
                                   headers=h)

    def order(self, account, order_id):
        r = self.server.request("GET", f"/v1/orders/{order_id}", headers=account.auth())
        self.assertEqual(r.status, 200, r)
        return r.body

    def wait_status(self, account, order_id, status, timeout=15):
        wait_until(lambda: self.order(account, order_id)["status"] == status, timeout,
                   what=f"order {order_id} {status}")
        return self.order(account, order_id)

    def product(self, listing_id):
        r = self.server.request("GET", f"/v1/products/{listing_id}")
        self.assertEqual(r.status, 200, r)
        return r.body

    def balance(self, seller):
        r = self.server.request("GET", "/v1/sellers/me/balance", headers=seller.auth())
        self.assertEqual(r.status, 200, r)
        return r.body

    def post(self, account, path, body=None, headers=None):
        h = dict(account.auth())
        h.update(headers or {})
        return self.server.request("POST", path, body, headers=h)

    def ledger(self, command):
        args = ["ledger", command, "--data-dir", str(self.server.data_dir)]
        if self.server.database_url:
            args += ["--database-url", self.server.database_url]
        return run_agora(*args)

    def assert_ledger_sound(self):
        """`agora ledger verify` and `agora ledger reconcile` both pass."""
        for command in ("verify", "reconcile"):
            out = self.ledger(command)
            self.assertEqual(out.returncode, 0, f"ledger {command}: {out.stdout}{out.stderr}")

    def paid_order(self, buyer=None, quantity=1, price=2500):
        """A fresh listing bought and paid; (buyer, listing, checkout, order)."""
        buyer = buyer or self.server.new_user()
        listing = self.listing(quantity=quantity + 2, price=price)
        self.add(buyer, listing, quantity)
        r = self.checkout(buyer, self.tokenize())
        self.assertEqual(r.status, 201, r)
        order = r.body["orders"][0]
        self.assertEqual(order["status"], "paid", r)
        return buyer, listing, r.body, order


class OrderFlows(Journey):
    database = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*SERVER_ARGS, database=cls.database)
        cls.seller = cls.server.new_seller(display_name="Sam Seller")
        cls.other_seller = cls.server.new_seller(display_name="Olga Other")
        cls.admin = cls.server.new_admin()
        cls.category = leaf_categories(cls.server)[0]["id"]

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r}:\n{cls.server.output()[-4000:]}")

    def test_the_whole_journey_moves_the_money_once(self):
        seller = self.server.new_seller(display_name="Journey Seller")
        word = "journey" + secrets.token_hex(3)
        listing = self.listing(seller=seller, quantity=3, price=2500, title=f"Vintage {word} lamp")
        wait_until(lambda: any(h["id"] == listing["id"] for h in
                               self.server.request("GET", f"/v1/search?q={word}").body.get("data", [])),
                   10, what="the listing in search")
        buyer = self.server.new_user()
        self.add(buyer, listing, 2)
        idem = key()
        r = self.checkout(buyer, self.tokenize(), idem)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("Location"), f"/v1/checkouts/{r.body['id']}")
        c = r.body
        self.assertEqual(c["status"], "paid")
        self.assertEqual(c["total"], eur(5000))
        self.assertEqual(c["payment"]["status"], "succeeded")
        self.assertEqual(c["payment"]["captured"], eur(5000))
        self.assertEqual(len(c["orders"]), 1)
        order = c["orders"][0]
        self.assertEqual(order["status"], "paid")
        self.assertEqual(order["seller_id"], seller.id)
        self.assertEqual(order["items"][0]["title"], listing["title"])
        self.assertEqual(order["items"][0]["unit_price"], eur(2500))
        self.assertEqual(order["items"][0]["quantity"], 2)
        self.assertIsNone(order["commission_rate_bps"])  # the buyer's view
        self.assertEqual(self.order(seller, order["id"])["commission_rate_bps"], 1000)
        self.assertEqual(self.product(listing["id"])["quantity"], 1)
        self.assertEqual(self.server.request("GET", "/v1/cart", headers=buyer.auth()).body["items"], [])
        # The same request again: the saved answer, no second charge.
        again = self.checkout(buyer, self.tokenize(), idem)
        self.assertEqual(again.status, 422, again)  # another token: another body
        self.assert_ledger_sound()
        self.assertEqual(self.balance(seller), {"available": [], "pending": [eur(5000)], "paid_out": []})

        self.assertProblem(self.post(buyer, f"/v1/orders/{order['id']}/ship",
                                     {"carrier": "DHL", "tracking_number": "x"}), 403)
        self.assertEqual(self.order(seller, order["id"])["shipping_address"]["city"], ADDRESS["city"])
        shipped = self.post(seller, f"/v1/orders/{order['id']}/ship",
                            {"carrier": "DHL", "tracking_number": "JJD0001"})
        self.assertEqual(shipped.status, 200, shipped)
        self.assertEqual(shipped.body["status"], "shipped")
        self.assertEqual(shipped.body["shipment"]["carrier"], "DHL")
        self.assertProblem(self.post(seller, f"/v1/orders/{order['id']}/confirm-delivery"), 403)
        done = self.post(buyer, f"/v1/orders/{order['id']}/confirm-delivery")
        self.assertEqual(done.status, 200, done)
        self.assertEqual(done.body["status"], "completed")  # no dispute window on this server
        # Commission 10 % by default: 4,500 becomes payable.
        wait_until(lambda: self.balance(seller)["available"] == [eur(4500)], 10, what="escrow released")
        self.assertEqual(self.balance(seller)["pending"], [eur(0)])
        self.assert_ledger_sound()

        run = self.post(self.admin, "/v1/admin/payouts", headers={"Idempotency-Key": key()})
        self.assertEqual(run.status, 200, run)
        mine = [p for p in run.body["data"] if p["seller_id"] == seller.id]
        self.assertEqual(len(mine), 1, run.body)
        self.assertEqual(mine[0]["amount"], eur(4500))
        self.assertEqual(mine[0]["status"], "paid")
        self.assertTrue(mine[0]["provider_transfer_id"].startswith("tr_"))
        self.assertEqual(self.balance(seller)["available"], [eur(0)])
        self.assertEqual(self.balance(seller)["paid_out"], [eur(4500)])
        payouts = self.server.request("GET", "/v1/sellers/me/payouts", headers=seller.auth())
        self.assertEqual([p["id"] for p in payouts.body["data"]], [mine[0]["id"]])
        history = [h["to"] for h in self.order(buyer, order["id"])["history"]]
        self.assertEqual(history, ["pending_payment", "paid", "shipped", "delivered", "completed"])
        self.assert_ledger_sound()

    def test_one_order_per_seller_under_one_checkout(self):
        buyer = self.server.new_user()
        a = self.listing(price=1000)
        b = self.listing(seller=self.other_seller, price=300)
        self.add(buyer, a, 2)
        self.add(buyer, b, 1)
        r = self.checkout(buyer, self.tokenize())
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["total"], eur(2300))
        by_seller = {o["seller_id"]: o for o in r.body["orders"]}
        self.assertEqual(set(by_seller), {self.seller.id, self.other_seller.id})
        self.assertEqual(by_seller[self.seller.id]["total"], eur(2000))
        self.assertEqual(by_seller[self.other_seller.id]["total"], eur(300))
        # Each seller sees only their order; the buyer both; an admin all.
        mine = self.server.request("GET", "/v1/orders?role=seller", headers=self.other_seller.auth()).body["data"]
        self.assertIn(by_seller[self.other_seller.id]["id"], [o["id"] for o in mine])
        self.assertNotIn(by_seller[self.seller.id]["id"], [o["id"] for o in mine])
        self.assertProblem(self.server.request("GET", f"/v1/orders/{by_seller[self.seller.id]['id']}",
                                               headers=self.other_seller.auth()), 404, "order-not-found")
        bought = self.server.request("GET", "/v1/orders", headers=buyer.auth()).body["data"]
        self.assertEqual({o["id"] for o in bought}, {o["id"] for o in r.body["orders"]})
        self.assertProblem(self.server.request("GET", "/v1/orders?role=all", headers=buyer.auth()), 403)
        admin_view = self.server.request("GET", "/v1/orders?limit=100", headers=self.admin.auth())
        self.assertEqual(admin_view.status, 200, admin_view)

    def test_declined_cards_cancel_the_orders_and_give_the_stock_back(self):
        for number, code in ((DECLINE, "card_declined"), (NO_FUNDS, "insufficient_funds")):
            buyer = self.server.new_user()
            listing = self.listing(quantity=2)
            self.add(buyer, listing, 2)
            r = self.checkout(buyer, self.tokenize(number))
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.body["status"], "payment_failed")
            self.assertEqual(r.body["payment"]["status"], "failed")
            self.assertEqual(r.body["payment"]["failure_code"], code)
            self.assertEqual(r.body["orders"][0]["status"], "cancelled")
            self.assertEqual(self.product(listing["id"])["quantity"], 2)
            # The cart stays for another try with another card.
            self.assertEqual(len(self.server.request("GET", "/v1/cart", headers=buyer.auth()).body["items"]), 1)
            retry = self.checkout(buyer, self.tokenize())
            self.assertEqual(retry.status, 201, retry)
            self.assertEqual(retry.body["status"], "paid")
        self.assert_ledger_sound()

    def test_a_timed_out_provider_call_ends_paid_by_the_webhook(self):
        buyer = self.server.new_user()
        listing = self.listing()
        self.add(buyer, listing)
        r = self.checkout(buyer, self.tokenize(NETWORK_ERROR))
        self.assertEqual(r.status, 201, r)
        # Usually still unknown when the answer leaves; the webhook may beat it.
        if r.body["payment"]["status"] == "processing":
            self.assertEqual(r.body["orders"][0]["status"], "pending_payment")
        else:
            self.assertEqual(r.body["payment"]["status"], "succeeded", r.body)
        order = self.wait_status(buyer, r.body["orders"][0]["id"], "paid")
        self.assertEqual(order["total"], eur(2500))
        c = self.server.request("GET", f"/v1/checkouts/{r.body['id']}", headers=buyer.auth())
        self.assertEqual(c.body["payment"]["status"], "succeeded")
        self.assertEqual(c.body["payment"]["captured"], eur(2500))
        self.assert_ledger_sound()

    def test_extra_authentication_then_paid(self):
        buyer = self.server.new_user()
        listing = self.listing()
        self.add(buyer, listing)
        r = self.checkout(buyer, self.tokenize(AUTHENTICATE))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["payment"]["status"], "requires_action")
        url = r.body["payment"]["next_action"]["url"]
        path = url[url.index("/sandbox/"):]
        done = self.server.request("POST", path, {"outcome": "succeed"})
        self.assertEqual(done.status, 200, done)
        self.wait_status(buyer, r.body["orders"][0]["id"], "paid")
        self.assertEqual(self.product(listing["id"])["quantity"], 2)

    def test_idempotency_keys_replay_refuse_and_are_required(self):
        buyer = self.server.new_user()
        listing = self.listing()
        self.add(buyer, listing)
        token = self.tokenize()
        idem = key()
        first = self.checkout(buyer, token, idem)
        self.assertEqual(first.status, 201, first)
        replay = self.checkout(buyer, token, idem)
        self.assertEqual(replay.status, 201, replay)
        self.assertEqual(replay.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(replay.body, first.body)
        other = self.checkout(buyer, token, idem, address=dict(ADDRESS, city="Hamburg"))
        self.assertProblem(other, 422, "idempotency-key-reused")
        self.assertProblem(self.checkout(buyer, token, idem=False), 400, fields=["Idempotency-Key"])
        self.assertProblem(self.checkout(buyer, token, idem="x" * 256), 400, fields=["Idempotency-Key"])
        # Another buyer's key space is their own: the same key is a new request.
        other_buyer = self.server.new_user()
        self.assertProblem(self.checkout(other_buyer, self.tokenize(), idem), 409, "cart-empty")
        bought = self.server.request("GET", "/v1/orders?role=buyer", headers=buyer.auth()).body["data"]
        self.assertEqual(len(bought), 1)

    def test_twenty_concurrent_retries_make_one_order_and_one_charge(self):
        buyer = self.server.new_user()
        listing = self.listing(quantity=5)
        self.add(buyer, listing, 2)
        token = self.tokenize()
        idem = key()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: self.checkout(buyer, token, idem), range(20)))
        statuses = sorted({a.status for a in answers})
        self.assertTrue(set(statuses) <= {201, 409}, [a for a in answers if a.status not in (201, 409)])
        for a in answers:
            if a.status == 409:
                self.assertProblem(a, 409, "idempotency-key-in-use")
        wait_until(lambda: self.checkout(buyer, token, idem).status == 201, 10, what="the checkout to finish")
        ids = {a.body["id"] for a in answers if a.status == 201} | {self.checkout(buyer, token, idem).body["id"]}
        self.assertEqual(len(ids), 1)
        bought = self.server.request("GET", "/v1/orders?role=buyer", headers=buyer.auth()).body["data"]
        self.assertEqual(len(bought), 1)
        self.assertEqual(self.product(listing["id"])["quantity"], 3)
        self.assertEqual(self.balance(self.seller)["pending"][0]["currency"], "EUR")
        self.assert_ledger_sound()

    def test_fifty_buyers_race_for_the_last_ten_items(self):
        seller = self.server.new_seller(display_name="Race Seller")
        listing = self.listing(seller=seller, quantity=10, price=700)
        buyers = [self.server.new_user() for _ in range(50)]
        tokens = [self.tokenize() for _ in buyers]
        for b in buyers:
            self.add(b, listing, 1)

        def attempt(i):
            return self.checkout(buyers[i], tokens[i])

        with concurrent.futures.ThreadPoolExecutor(25) as pool:
            answers = list(pool.map(attempt, range(50)))
        paid = [a for a in answers if a.status == 201 and a.body["status"] == "paid"]
        refused = [a for a in answers if a.status == 409]
        self.assertEqual(len(paid), 10, ([(a.body.get("status"), a.body.get("payment")) for a in answers
                                          if a.status == 201 and a not in paid],
                                         [l for l in self.server.log_lines() if l.get("level") != "info"][:20]))
        self.assertEqual(len(refused), 40, [a for a in answers if a.status not in (201, 409)][:3])
        for a in refused:
            self.assertProblem(a, 409, "insufficient-stock")
        self.assertEqual(self.product(listing["id"])["quantity"], 0)
        self.assertEqual(self.balance(seller)["pending"], [eur(7000)])
        self.assert_ledger_sound()

    def test_refusals_write_nothing(self):
        buyer = self.server.new_user()
        token = self.tokenize()
        self.assertProblem(self.checkout(buyer, token), 409, "cart-empty")
        listing = self.listing()
        self.add(buyer, listing)
        for body in ({"payment_token": token},
                     {"payment_token": "", "shipping_address": ADDRESS},
                     {"payment_token": token, "shipping_address": dict(ADDRESS, country="de")},
                     {"payment_token": token, "shipping_address": dict(ADDRESS, country="DEU")},
                     {"payment_token": token, "shipping_address": {k: v for k, v in ADDRESS.items() if k != "city"}},
                     {"payment_token": token, "shipping_address": dict(ADDRESS, planet="Mars")},
                     {"payment_token": token, "shipping_address": ADDRESS, "total": 1}):
            r = self.server.request("POST", "/v1/checkout", body,
                                    headers=dict(buyer.auth(), **{"Idempotency-Key": key()}))
            self.assertProblem(r, 400)
        # A card number is refused wherever it is typed.
        r = self.server.request("POST", "/v1/checkout", {"payment_token": "4242 4242 4242 4242",
                                                         "shipping_address": ADDRESS},
                                headers=dict(buyer.auth(), **{"Idempotency-Key": key()}))
        self.assertProblem(r, 400, "card-data-refused")
        self.assertProblem(self.server.request("POST", "/v1/checkout", {"payment_token": token,
                                                                        "shipping_address": ADDRESS},
                                               headers={"Idempotency-Key": key()}), 401)
        # Mixed currencies cannot be paid at once.
        usd = self.listing(seller=self.other_seller, currency="USD")
        self.add(buyer, usd)
        self.assertProblem(self.checkout(buyer, token), 409, "currency-mismatch")
        self.assertEqual(self.product(listing["id"])["quantity"], 3)
        self.assertEqual(self.server.request("GET", "/v1/orders", headers=buyer.auth()).body["data"], [])
        # Nothing to pay for cannot be checked out.
        cart = self.server.request("GET", "/v1/cart", headers=buyer.auth()).body["items"]
        self.server.request("DELETE", f"/v1/cart/items/{cart[1]['id']}", headers=buyer.auth())
        free = self.listing(seller=self.other_seller, price=0)
        free_line = self.add(buyer, free).headers.get("Location")
        self.assertProblem(self.checkout(buyer, token), 409, "order-amount-zero")
        self.assertEqual(self.product(free["id"])["quantity"], 3)
        self.assertEqual(self.product(listing["id"])["quantity"], 3)
        self.server.request("DELETE", free_line, headers=buyer.auth())
        # A token nobody issued: the payment fails, nothing is charged.
        r = self.checkout(buyer, "tok_" + "0" * 26)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["payment"]["status"], "failed")
        self.assertEqual(r.body["payment"]["failure_code"], "invalid_payment_token")
        self.assertEqual(self.product(listing["id"])["quantity"], 3)

    def test_transitions_that_are_not_allowed(self):
        buyer, listing, _, order = self.paid_order()
        oid = order["id"]
        stranger = self.server.new_user()
        self.assertProblem(self.post(stranger, f"/v1/orders/{oid}/cancel"), 404, "order-not-found")
        self.assertProblem(self.post(buyer, f"/v1/orders/{oid}/confirm-delivery"), 409,
                           "order-transition-not-allowed")
        self.assertProblem(self.post(self.seller, f"/v1/orders/{oid}/ship", {"carrier": "", "tracking_number": "1"}),
                           400, fields=["carrier"])
        self.assertProblem(self.post(self.seller, f"/v1/orders/{oid}/ship", {"carrier": "UPS"}), 400,
                           fields=["tracking_number"])
        self.assertProblem(self.post(self.seller, "/v1/orders/ord_0000000000000000000000000/ship",
                                     {"carrier": "UPS", "tracking_number": "1"}), 404)
        self.assertEqual(self.post(self.seller, f"/v1/orders/{oid}/ship",
                                   {"carrier": "UPS", "tracking_number": "1Z"}).status, 200)
        self.assertProblem(self.post(buyer, f"/v1/orders/{oid}/cancel"), 409, "order-transition-not-allowed")
        self.assertProblem(self.post(self.seller, f"/v1/orders/{oid}/ship",
                                     {"carrier": "UPS", "tracking_number": "1Z"}), 409)
        # An unpaid order cannot be shipped.
        b2 = self.server.new_user()
        l2 = self.listing()
        self.add(b2, l2)
        pending = self.checkout(b2, self.tokenize(AUTHENTICATE))
        self.assertProblem(self.post(self.seller, f"/v1/orders/{pending.body['orders'][0]['id']}/ship",
                                     {"carrier": "UPS", "tracking_number": "1"}), 409, "order-transition-not-allowed")
        # Cancelling it gives the stock back.
        cancelled = self.post(b2, f"/v1/orders/{pending.body['orders'][0]['id']}/cancel", {"reason": "changed mind"})
        self.assertEqual(cancelled.status, 200, cancelled)
        self.assertEqual(cancelled.body["status"], "cancelled")
        self.assertEqual(self.product(l2["id"])["quantity"], 3)
        c2 = self.server.request("GET", f"/v1/checkouts/{pending.body['id']}", headers=b2.auth())
        self.assertEqual(c2.body["status"], "cancelled")
        self.assertProblem(self.server.request("GET", f"/v1/checkouts/{pending.body['id']}",
                                               headers=buyer.auth()), 404, "checkout-not-found")

    def test_cancelling_a_paid_order_refunds_it_in_full(self):
        buyer, listing, checkout, order = self.paid_order(price=1200)
        r = self.post(buyer, f"/v1/orders/{order['id']}/cancel", {"reason": "ordered by mistake"},
                      headers={"Idempotency-Key": key()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["status"], "cancelled")
        self.assertEqual(r.body["refunded"], eur(1200))
        wait_until(lambda: self.server.request("GET", f"/v1/checkouts/{checkout['id']}", headers=buyer.auth())
                   .body["payment"]["refunded"] == eur(1200), 10, what="the refund")
        self.assert_ledger_sound()

    def test_disputes_are_resolved_by_admins_with_bounded_refunds(self):
        buyer, listing, checkout, order = self.paid_order(price=3000)
        oid = order["id"]
        self.assertProblem(self.post(self.seller, f"/v1/orders/{oid}/disputes", {"reason": "x"}), 403)
        self.assertProblem(self.post(buyer, f"/v1/orders/{oid}/disputes", {}), 400, fields=["reason"])
        d = self.post(buyer, f"/v1/orders/{oid}/disputes", {"reason": "It never arrived"})
        self.assertEqual(d.status, 201, d)
        self.assertEqual(self.order(buyer, oid)["status"], "disputed")
        got = self.server.request("GET", d.headers.get("Location"), headers=self.seller.auth())
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.body, d.body)
        self.assertProblem(self.server.request("GET", d.headers.get("Location"),
                                               headers=self.server.new_user().auth()), 404)
        self.assertProblem(self.post(buyer, f"/v1/orders/{oid}/disputes", {"reason": "again"}), 409)
        resolve = f"/v1/orders/{oid}/disputes/{d.body['id']}/resolve"
        self.assertProblem(self.post(buyer, resolve, {"resolution": "refund"}, headers={"Idempotency-Key": key()}),
                           403)
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "partial_refund", "refund_amount": 3001},
                                     headers={"Idempotency-Key": key()}), 422, "refund-exceeds-captured")
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "maybe"},
                                     headers={"Idempotency-Key": key()}), 400, fields=["resolution"])
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "refund"}), 400, fields=["Idempotency-Key"])
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "partial_refund"},
                                     headers={"Idempotency-Key": key()}), 400, fields=["refund_amount"])
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "release", "refund_amount": 5},
                                     headers={"Idempotency-Key": key()}), 400, fields=["refund_amount"])
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "partial_refund", "refund_amount": -5},
                                     headers={"Idempotency-Key": key()}), 400, fields=["refund_amount"])
        before = self.balance(self.seller)["available"]
        ok = self.post(self.admin, resolve, {"resolution": "partial_refund", "refund_amount": 1000, "note": "half"},
                       headers={"Idempotency-Key": key()})
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(ok.body["status"], "resolved")
        self.assertEqual(self.order(buyer, oid)["status"], "completed")
        self.assertProblem(self.post(self.admin, resolve, {"resolution": "refund"},
                                     headers={"Idempotency-Key": key()}), 409, "dispute-resolved")
        # 2,000 released, minus 10 %: 1,800 more payable; 1,000 back to the buyer.
        expected = (before[0]["amount"] if before else 0) + 1800
        wait_until(lambda: self.balance(self.seller)["available"] == [eur(expected)], 10, what="release")
        wait_until(lambda: self.server.request("GET", f"/v1/checkouts/{checkout['id']}", headers=buyer.auth())
                   .body["payment"]["refunded"] == eur(1000), 10, what="the partial refund")
        self.assert_ledger_sound()

    def test_webhooks_are_verified_and_applied_once(self):
        secret = (self.server.data_dir / "keys" / "sandbox-webhook-secret").read_text().strip()
        body = json.dumps({"id": "evt_" + secrets.token_hex(8), "object": "event", "type": "payment_intent.succeeded",
                           "created": int(time.time()), "data": {"object": {"id": "pi_unknown", "object": "payment_intent",
                                                                           "amount": 100, "currency": "eur",
                                                                           "status": "succeeded", "metadata": {}}}})

        def send(sig, provider="sandbox", payload=body):
            return self.server.request("POST", f"/v1/payments/webhooks/{provider}", raw=payload.encode(),
                                       headers={"Content-Type": "application/json", "Stripe-Signature": sig})

        def sign(ts, payload=body, key_=secret):
            mac = hmac.new(key_.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
            return f"t={ts},v1={mac}"

        now = int(time.time())
        self.assertProblem(send("t=1,v1=00"), 400, "webhook-signature-invalid")
        self.assertProblem(send(""), 400, "webhook-signature-invalid")
        self.assertProblem(send(sign(now, key_="whsec_forged")), 400, "webhook-signature-invalid")
        self.assertProblem(send(sign(now), payload=body.replace("100", "999")), 400, "webhook-signature-invalid")
        self.assertProblem(send(sign(now - 3600)), 400, "webhook-timestamp-stale")
        self.assertProblem(send(sign(now), provider="paypal"), 404)
        self.assertProblem(send(sign(now, payload="[1]"), payload="[1]"), 400, "webhook-malformed")
        first = send(sign(now))
        self.assertEqual(first.status, 200, first)
        self.assertEqual(send(sign(now)).body["applied"], False)

    def test_webhooks_late_twice_and_out_of_order_settle_once(self):
        settings = self.server.request("POST", "/sandbox/v1/webhook_settings",
                                       {"delay_ms": 300, "duplicate": True, "out_of_order": True})
        self.assertEqual(settings.status, 200, settings)
        try:
            buyers = []
            for _ in range(3):
                buyer = self.server.new_user()
                listing = self.listing(price=900)
                self.add(buyer, listing)
                r = self.checkout(buyer, self.tokenize(NETWORK_ERROR))
                self.assertEqual(r.status, 201, r)
                buyers.append((buyer, r.body))
            for buyer, c in buyers:
                self.wait_status(buyer, c["orders"][0]["id"], "paid")
                got = self.server.request("GET", f"/v1/checkouts/{c['id']}", headers=buyer.auth()).body
                self.assertEqual(got["payment"]["captured"], eur(900))
        finally:
            self.server.request("POST", "/sandbox/v1/webhook_settings",
                                {"delay_ms": 0, "duplicate": False, "out_of_order": False})
        self.assert_ledger_sound()

    def test_reconciliation_names_a_payment_the_provider_sees_otherwise(self):
        if self.database != "sqlite":
            self.skipTest("edits the SQLite file directly")
        _, _, checkout, _ = self.paid_order(price=800)
        payment_id = checkout["payment"]["id"]
        db = sqlite3.connect(self.server.data_dir / "payments.db")
        try:
            with db:
                db.execute("UPDATE sandbox_intents SET amount_received = amount_received - 1 WHERE id = "
                           "(SELECT provider_intent_id FROM payments WHERE id = ?)", (payment_id,))
            out = self.ledger("reconcile")
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertIn(payment_id, out.stdout)
            with db:
                db.execute("UPDATE sandbox_intents SET amount_received = amount_received + 1 WHERE id = "
                           "(SELECT provider_intent_id FROM payments WHERE id = ?)", (payment_id,))
        finally:
            db.close()
        self.assertEqual(self.ledger("reconcile").returncode, 0)

    def test_seller_routes_need_the_seller_role(self):
        buyer = self.server.new_user()
        self.assertProblem(self.server.request("GET", "/v1/sellers/me/balance", headers=buyer.auth()), 403)
        self.assertProblem(self.server.request("GET", "/v1/sellers/me/payouts?limit=0", headers=self.seller.auth()),
                           400, fields=["limit"])
        self.assertProblem(self.post(buyer, "/v1/admin/payouts", headers={"Idempotency-Key": key()}), 403)
        self.assertProblem(self.server.request("GET", "/v1/sellers/me/balance", headers=self.admin.auth()), 403)
        self.assertProblem(self.post(self.admin, "/v1/admin/payouts", {"seller_id": self.seller.id},
                                     headers={"Idempotency-Key": key()}), 400)
        self.assertProblem(self.post(self.admin, "/v1/admin/payouts", headers={"Idempotency-Key": "\u00e9"}), 400)


class OrdersOnSqlite(OrderFlows, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class OrdersOnPostgres(OrderFlows, unittest.TestCase):
    database = "postgres"


class Recovery(Journey):
    """Crashes and timeouts, each on a server of its own."""

    database = None

    def start(self, *args):
        self.server = Server(*SERVER_ARGS, *args, database=self.database)
        self.addCleanup(self.server.stop)
        self.seller = self.server.new_seller()
        self.category = leaf_categories(self.server)[0]["id"]

    def relogin(self, account):
        account.tokens = self.server.login(account.email, account.password).body
        return account

    def test_kill_between_charge_and_webhook_loses_nothing_and_charges_once(self):
        self.start()
        self.server.request("POST", "/sandbox/v1/webhook_settings", {"delay_ms": 1500})
        buyer = self.server.new_user()
        listing = self.listing(price=4100)
        self.add(buyer, listing)
        r = self.checkout(buyer, self.tokenize(NETWORK_ERROR))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["payment"]["status"], "processing")
        self.server.proc.kill()  # SIGKILL: no flush, no goodbye
        self.server.proc.wait()
        self.server.restart()
        self.relogin(buyer)
        self.relogin(self.seller)
        order = self.wait_status(buyer, r.body["orders"][0]["id"], "paid", timeout=20)
        self.assertEqual(order["total"], eur(4100))
        self.assertEqual(self.balance(self.seller)["pending"], [eur(4100)])
        self.assertEqual(self.product(listing["id"])["quantity"], 2)
        self.assert_ledger_sound()

    def test_unpaid_checkouts_time_out_and_release_the_stock(self):
        self.start("--checkout-payment-timeout", "5")
        buyer = self.server.new_user()
        listing = self.listing(quantity=1)
        self.add(buyer, listing)
        r = self.checkout(buyer, self.tokenize(AUTHENTICATE))
        self.assertEqual(r.body["payment"]["status"], "requires_action", r)
        self.assertEqual(self.product(listing["id"])["quantity"], 0)
        order = self.wait_status(buyer, r.body["orders"][0]["id"], "cancelled", timeout=20)
        self.assertEqual(order["cancel_reason"], "payment_timeout")
        self.assertEqual(self.product(listing["id"])["quantity"], 1)
        # The buyer authenticates after all: the late charge is refunded.
        url = r.body["payment"]["next_action"]["url"]
        self.assertEqual(self.server.request("POST", url[url.index("/sandbox/"):], {"outcome": "succeed"}).status, 200)
        wait_until(lambda: self.server.request("GET", f"/v1/checkouts/{r.body['id']}", headers=buyer.auth())
                   .body["payment"]["refunded"] == eur(2500), 15, what="the late payment refunded")
        self.assert_ledger_sound()


class StripeProviderFlows(Journey):
    """`--payment-provider stripe` against a loopback stand-in that answers
    with Stripe's shapes (tests/http/fake_stripe.py): the sandbox is off,
    charges and refunds go to Stripe's API, Stripe's webhooks are verified
    with the endpoint secret."""

    database = "sqlite"
    WEBHOOK_SECRET = "whsec_agora_fake"

    def setUp(self):
        self.stripe = FakeStripe()
        self.addCleanup(self.stripe.stop)
        self.server = Server(*SERVER_ARGS, "--payment-provider", "stripe", "--stripe-api-url", self.stripe.url,
                             database=self.database,
                             env={"AGORA_STRIPE_SECRET_KEY": fake_stripe.SECRET_KEY,
                                  "AGORA_STRIPE_WEBHOOK_SECRET": self.WEBHOOK_SECRET})
        self.addCleanup(self.server.stop)
        self.seller = self.server.new_seller()
        self.category = leaf_categories(self.server)[0]["id"]

    def ledger_with_stripe(self, command):
        return run_agora("ledger", command, "--data-dir", str(self.server.data_dir), "--payment-provider", "stripe",
                         "--stripe-api-url", self.stripe.url,
                         env={"AGORA_STRIPE_SECRET_KEY": fake_stripe.SECRET_KEY,
                              "AGORA_STRIPE_WEBHOOK_SECRET": self.WEBHOOK_SECRET})

    def test_charges_refunds_and_webhooks_go_through_stripe(self):
        self.assertEqual(self.server.request("POST", "/sandbox/v1/tokens", {}).status, 404)
        buyer = self.server.new_user()
        listing = self.listing(price=2500)
        self.add(buyer, listing)
        r = self.checkout(buyer, "tok_visa")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["status"], "paid")
        created = [f for m, p, f, h in self.stripe.requests if m == "POST" and p == "/v1/payment_intents"]
        self.assertEqual(len(created), 1)
        self.assertEqual(created[0]["amount"], "2500")
        self.assertEqual(created[0]["currency"], "eur")
        self.assertEqual(created[0]["confirm"], "true")
        self.assertEqual(created[0]["metadata[payment_id]"], r.body["payment"]["id"])
        self.assertTrue(all(h.get("Idempotency-Key") for m, p, f, h in self.stripe.requests if m == "POST"))
        # Stripe's webhook for it, signed with the endpoint secret: applied once, already settled.
        pi = next(iter(self.stripe.intents.values()))
        body = json.dumps({"id": "evt_" + secrets.token_hex(8), "object": "event", "type": "payment_intent.succeeded",
                           "created": int(time.time()), "data": {"object": self.stripe.intent_json(pi)}})
        ts = int(time.time())
        sig = hmac.new(self.WEBHOOK_SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        hook = self.server.request("POST", "/v1/payments/webhooks/stripe", raw=body.encode(),
                                   headers={"Content-Type": "application/json", "Stripe-Signature": f"t={ts},v1={sig}"})
        self.assertEqual(hook.status, 200, hook)
        self.assertEqual(hook.body["applied"], False)
        self.assertProblem(self.server.request("POST", "/v1/payments/webhooks/sandbox", raw=body.encode(),
                                               headers={"Content-Type": "application/json",
                                                        "Stripe-Signature": f"t={ts},v1={sig}"}), 404)
        # A cancellation refunds through Stripe.
        cancel = self.post(buyer, f"/v1/orders/{r.body['orders'][0]['id']}/cancel")
        self.assertEqual(cancel.status, 200, cancel)
        wait_until(lambda: len(self.stripe.refunds) == 1, 10, what="the refund at Stripe")
        self.assertEqual(self.stripe.refunds[0]["amount"], 2500)
        wait_until(lambda: self.server.request("GET", f"/v1/checkouts/{r.body['id']}", headers=buyer.auth())
                   .body["payment"]["refunded"] == eur(2500), 10, what="the refund recorded")
        self.assert_ledger_sound_with_stripe()

    def test_a_declined_card_is_a_failed_payment(self):
        buyer = self.server.new_user()
        listing = self.listing()
        self.add(buyer, listing)
        r = self.checkout(buyer, "tok_chargeDeclinedInsufficientFunds")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body["payment"]["status"], "failed")
        self.assertEqual(r.body["payment"]["failure_code"], "insufficient_funds")
        self.assertEqual(self.product(listing["id"])["quantity"], 3)
        self.assert_ledger_sound_with_stripe()

    def assert_ledger_sound_with_stripe(self):
        for command in ("verify", "reconcile"):
            out = self.ledger_with_stripe(command)
            self.assertEqual(out.returncode, 0, f"ledger {command}: {out.stdout}{out.stderr}")


class StripeProviderOnSqlite(StripeProviderFlows, unittest.TestCase):
    pass


class RecoveryOnSqlite(Recovery, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class RecoveryOnPostgres(Recovery, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
