"""The buyer's cart against the real server, on SQLite and on PostgreSQL.

CartFlows holds the tests; CartOnSqlite and CartOnPostgres run them on each
store. The tests share a class-wide server and two sellers; each test makes
its own buyers (so its own carts) and its own listings.

The cart stores listings and quantities, never prices: every read prices
the lines at the catalog's current figures, so the tests change listings
(price, title, stock, publication) through the catalog API and read the
cart again. Every refusal is checked to write nothing: the whole cart, as
GET /v1/cart answers it, is the same before and after.

Where the contract was silent these tests assume: the order of `items` and
of `totals` is not specified (they are compared by id and by currency);
`item_count` counts every line, `unavailable` ones included; an
`unavailable` line keeps its `quantity`, has `seller_id: null` and
`available: 0` (as api/openapi.yaml describes it); timestamps are RFC 3339
in UTC with milliseconds like everywhere else in the API; a cart whose lines
were all removed reads as an empty cart (`updated_at: null`); the cart does
not reserve stock, so two buyers may each hold all the units of a listing;
adding more of a listing whose line is `unavailable` is 404
listing-not-found, like adding any listing that is not active; a malformed
product id is 404 or a validation problem naming `product_id`.
"""

import re
import unittest

from tests.http.agora import (ProblemAssertions, Server, bearer, create_listing, etag, leaf_categories, pg_url)

PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CART_KEYS = {"items", "totals", "item_count", "updated_at"}
ITEM_KEYS = {"id", "product_id", "seller_id", "title", "price", "quantity", "available", "subtotal", "status",
             "added_at", "updated_at"}
MISSING_PRODUCT = "prd_" + "0" * 26
MISSING_ITEM = "cit_" + "0" * 26
EMPTY_CART = {"items": [], "totals": [], "item_count": 0, "updated_at": None}
CARD = "4242 4242 4242 4242"


def eur(amount):
    return {"amount": amount, "currency": "EUR"}


def usd(amount):
    return {"amount": amount, "currency": "USD"}


class CartFlows(ProblemAssertions):
    database = None  # "sqlite" or "postgres", set by the concrete classes

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--login-max-failures", "1000", database=cls.database)
        cls.seller = cls.server.new_seller(display_name="Sam Seller")
        cls.other_seller = cls.server.new_seller(display_name="Olga Other")
        cls.category = leaf_categories(cls.server)[0]

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    # -- helpers -------------------------------------------------------------------

    def buyer(self, tag="buyer"):
        return self.server.new_user(tag=tag)

    def listing(self, seller=None, publish=True, conn=None, **override):
        """An (active, unless publish=False) listing of `seller` (the class's
        seller by default): 3 units at 19.99 EUR unless overridden."""
        return create_listing(self.server, seller or self.seller, self.category["id"], publish=publish, conn=conn,
                              **override)

    def get_cart(self, account, conn=None):
        return self.server.request("GET", "/v1/cart", headers=account.auth(), conn=conn)

    def cart(self, account, conn=None):
        """GET /v1/cart as `account`: 200, checked for shape and consistency."""
        return self.assertCart(self.assertJson(self.get_cart(account, conn), 200))

    def add(self, account, product_id, quantity=1, conn=None, **extra):
        body = {"product_id": product_id, "quantity": quantity, **extra}
        return self.server.request("POST", "/v1/cart/items", body, headers=account.auth(), conn=conn)

    def add_ok(self, account, product_id, quantity=1, status=201, conn=None):
        """Adds and expects `status` (201 for a new line, 200 for a merge);
        returns (cart, the line of `product_id`)."""
        r = self.add(account, product_id, quantity, conn=conn)
        cart = self.assertCart(self.assertJson(r, status))
        line = self.line(cart, product_id)
        if status == 201:
            self.assertEqual(r.headers.get("Location"), f"/v1/cart/items/{line['id']}")
        return cart, line

    def patch_item(self, account, item_id, body=None, raw=None, headers=None):
        return self.server.request("PATCH", f"/v1/cart/items/{item_id}", body, raw=raw,
                                   headers={**account.auth(), **(headers or {})})

    def delete_item(self, account, item_id):
        return self.server.request("DELETE", f"/v1/cart/items/{item_id}", headers=account.auth())

    def seller_patch(self, listing_id, body, seller=None):
        seller = seller or self.seller
        current = self.assertJson(self.server.request("GET", f"/v1/products/{listing_id}", headers=seller.auth()),
                                  200)
        r = self.server.request("PATCH", f"/v1/products/{listing_id}", body,
                                headers={**seller.auth(), "If-Match": etag(current["version"])})
        return self.assertJson(r, 200)

    def seller_action(self, listing_id, verb, body=None, seller=None):
        r = self.server.request("POST", f"/v1/products/{listing_id}/{verb}", body,
                                headers=(seller or self.seller).auth())
        return self.assertJson(r, 200)

    def line(self, cart, product_id):
        lines = [x for x in cart["items"] if x["product_id"] == product_id]
        self.assertEqual(len(lines), 1, f"expected one line of {product_id} in {cart}")
        return lines[0]

    def totals(self, cart):
        """The totals as {currency: amount}."""
        return {t["currency"]: t["amount"] for t in cart["totals"]}

    def assertCart(self, cart):
        """The Cart's shape, and that its figures agree with its lines."""
        self.assertIsInstance(cart, dict, cart)
        self.assertEqual(set(cart), CART_KEYS, cart)
        self.assertIsInstance(cart["items"], list)
        self.assertLessEqual(len(cart["items"]), 50)
        ids = [x["id"] for x in cart["items"]]
        self.assertEqual(len(ids), len(set(ids)), f"a line id twice in {cart}")
        products = [x["product_id"] for x in cart["items"]]
        self.assertEqual(len(products), len(set(products)), f"a listing on two lines in {cart}")
        expected_totals = {}
        for item in cart["items"]:
            self.assertItem(item)
            if item["status"] != "unavailable":
                cur = item["subtotal"]["currency"]
                expected_totals[cur] = expected_totals.get(cur, 0) + item["subtotal"]["amount"]
        for t in cart["totals"]:
            self.assertEqual(set(t), {"currency", "amount"}, cart["totals"])
        currencies = [t["currency"] for t in cart["totals"]]
        self.assertEqual(len(currencies), len(set(currencies)), f"a currency twice in {cart['totals']}")
        self.assertEqual(self.totals(cart), expected_totals, f"totals disagree with the lines: {cart}")
        self.assertEqual(cart["item_count"], sum(x["quantity"] for x in cart["items"]), cart)
        if cart["items"]:
            self.assertRegex(cart["updated_at"], RFC3339_MS_UTC)
            self.assertGreaterEqual(cart["updated_at"], max(x["updated_at"] for x in cart["items"]))
        else:
            self.assertEqual(cart, EMPTY_CART)
        return cart

    def assertItem(self, item):
        self.assertEqual(set(item), ITEM_KEYS, item)
        self.assertRegex(item["id"], r"^cit_[0-9A-Za-z]{10,}$")
        self.assertRegex(item["product_id"], r"^prd_[0-9A-Za-z]{10,}$")
        self.assertIsInstance(item["quantity"], int)
        self.assertTrue(1 <= item["quantity"] <= 100, item)
        self.assertIn(item["status"], ("ok", "unavailable", "insufficient_stock"))
        self.assertRegex(item["added_at"], RFC3339_MS_UTC)
        self.assertRegex(item["updated_at"], RFC3339_MS_UTC)
        self.assertGreaterEqual(item["updated_at"], item["added_at"])
        if item["status"] == "unavailable":
            self.assertIsNone(item["seller_id"], item)
            self.assertEqual(item["available"], 0, item)
            self.assertIsNone(item["title"], item)
            self.assertIsNone(item["price"], item)
            self.assertIsNone(item["subtotal"], item)
            return
        self.assertRegex(item["seller_id"], r"^usr_[0-9A-Za-z]{10,}$")
        self.assertIsInstance(item["title"], str)
        self.assertEqual(set(item["price"]), {"amount", "currency"})
        self.assertIsInstance(item["available"], int)
        self.assertEqual(item["subtotal"], {"amount": item["price"]["amount"] * item["quantity"],
                                            "currency": item["price"]["currency"]}, item)
        self.assertEqual(item["status"], "ok" if item["quantity"] <= item["available"] else "insufficient_stock",
                         item)

    def assertLine(self, line, listing, quantity, status="ok", available=None):
        """`line` holds `quantity` of `listing` as the catalog has it now."""
        self.assertEqual((line["product_id"], line["seller_id"], line["title"], line["price"], line["quantity"],
                          line["available"], line["status"]),
                         (listing["id"], listing["seller_id"], listing["title"], listing["price"], quantity,
                          listing["quantity"] if available is None else available, status))

    def assertFieldError(self, response, field, status=400):
        body = self.assertProblem(response, status, "validation")
        named = [e.get("field", "") for e in body.get("errors", [])]
        self.assertIn(field, named, f"no error for field {field!r} in {body}")
        return body

    def assertNothingWritten(self, account, before):
        self.assertEqual(self.cart(account), before, "a refused request changed the cart")

    # -- reading and adding ------------------------------------------------------------

    def test_a_new_cart_is_empty(self):
        """A user who never added anything has an empty cart: items [],
        totals [], item_count 0, updated_at null; the answer is not cached."""
        buyer = self.buyer()
        r = self.get_cart(buyer)
        self.assertEqual(self.assertJson(r, 200), EMPTY_CART)
        self.assertIn("no-store", (r.headers.get("Cache-Control") or "").lower())
        # A seller has a cart too (any signed-in user).
        self.assertEqual(self.cart(self.server.new_seller(tag="shopper")), EMPTY_CART)

    def test_lines_of_two_sellers_in_two_currencies(self):
        """Two listings of two sellers, in EUR and USD: each add is 201 with
        Location and the whole cart; the lines carry the catalog's figures;
        totals are one sum per currency; item_count is the sum of quantities."""
        buyer = self.buyer()
        book = self.listing(price=eur(1999), quantity=5)
        lamp = self.listing(self.other_seller, price=usd(3000), quantity=2)
        cart, first = self.add_ok(buyer, book["id"], 2)
        self.assertEqual(len(cart["items"]), 1)
        self.assertLine(first, book, 2)
        self.assertEqual(first["subtotal"], eur(3998))
        self.assertEqual(cart["totals"], [eur(3998)])
        self.assertEqual(cart["item_count"], 2)
        cart, second = self.add_ok(buyer, lamp["id"], 1)
        self.assertNotEqual(first["id"], second["id"])
        self.assertEqual({x["id"] for x in cart["items"]}, {first["id"], second["id"]})
        self.assertLine(self.line(cart, book["id"]), book, 2)
        self.assertLine(second, lamp, 1)
        self.assertEqual(second["subtotal"], usd(3000))
        self.assertEqual(self.totals(cart), {"EUR": 3998, "USD": 3000})
        self.assertEqual(cart["item_count"], 3)
        self.assertEqual(self.cart(buyer), cart, "GET /v1/cart answers what the add answered")
        # A seller may fill a cart with another seller's listings.
        _, line = self.add_ok(self.server.new_seller(tag="shopper"), book["id"], 1)
        self.assertLine(line, book, 1)

    def test_adding_a_listing_again_adds_to_its_line(self):
        """Adding a listing that is in the cart already adds to the line's
        quantity and answers 200: same line id, same added_at, one line."""
        buyer = self.buyer()
        listing = self.listing(quantity=10)
        _, line = self.add_ok(buyer, listing["id"], 1)
        cart, merged = self.add_ok(buyer, listing["id"], 2, status=200)
        self.assertEqual(len(cart["items"]), 1)
        self.assertEqual((merged["id"], merged["quantity"], merged["added_at"]), (line["id"], 3, line["added_at"]))
        self.assertGreaterEqual(merged["updated_at"], line["updated_at"])
        self.assertEqual(merged["subtotal"], eur(3 * 1999))
        self.assertEqual((cart["item_count"], cart["totals"]), (3, [eur(3 * 1999)]))
        self.assertEqual(self.cart(buyer), cart)

    def test_quantities_at_the_limits_are_accepted(self):
        """1 and 100 units are accepted, and merging up to exactly 100."""
        buyer = self.buyer()
        big = self.listing(quantity=1000, price=eur(1))
        self.assertEqual(self.add_ok(buyer, big["id"], 100)[1]["quantity"], 100)
        other = self.listing(quantity=1000, price=eur(1))
        self.add_ok(buyer, other["id"], 1)
        self.assertEqual(self.add_ok(buyer, other["id"], 99, status=200)[1]["quantity"], 100)
        self.assertEqual(self.cart(buyer)["item_count"], 200)

    # -- changing and removing lines -------------------------------------------------------

    def test_patch_sets_the_quantity(self):
        """PATCH sets the line's quantity (not adds), answers the whole cart
        and keeps the line's id and added_at."""
        buyer = self.buyer()
        listing = self.listing(quantity=150)
        _, line = self.add_ok(buyer, listing["id"], 2)
        r = self.patch_item(buyer, line["id"], {"quantity": 5})
        cart = self.assertCart(self.assertJson(r, 200))
        changed = self.line(cart, listing["id"])
        self.assertEqual((changed["id"], changed["quantity"], changed["added_at"]), (line["id"], 5, line["added_at"]))
        self.assertGreaterEqual(changed["updated_at"], line["updated_at"])
        self.assertEqual((cart["item_count"], cart["totals"]), (5, [eur(5 * 1999)]))
        self.assertEqual(self.cart(buyer), cart)
        for quantity in (1, 100):
            with self.subTest(quantity=quantity):
                cart = self.assertCart(self.assertJson(self.patch_item(buyer, line["id"], {"quantity": quantity}),
                                                       200))
                self.assertEqual(self.line(cart, listing["id"])["quantity"], quantity)

    def test_delete_removes_a_line(self):
        """DELETE answers 204 with no body and removes only that line; again
        it is 404 cart-item-not-found. A cart whose lines are all removed is
        empty again."""
        buyer = self.buyer()
        a = self.listing()
        b = self.listing(self.other_seller, price=usd(500))
        _, line_a = self.add_ok(buyer, a["id"], 1)
        _, line_b = self.add_ok(buyer, b["id"], 2)
        r = self.delete_item(buyer, line_a["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        cart = self.cart(buyer)
        self.assertEqual([x["id"] for x in cart["items"]], [line_b["id"]])
        self.assertEqual((cart["totals"], cart["item_count"]), ([usd(1000)], 2))
        self.assertProblem(self.delete_item(buyer, line_a["id"]), 404, "cart-item-not-found")
        self.assertProblem(self.patch_item(buyer, line_a["id"], {"quantity": 1}), 404, "cart-item-not-found")
        self.assertEqual(self.cart(buyer), cart)
        self.assertEqual(self.delete_item(buyer, line_b["id"]).status, 204)
        self.assertEqual(self.cart(buyer), EMPTY_CART)
        # The listing can be added again, on a new line.
        _, again = self.add_ok(buyer, a["id"], 1)
        self.assertNotEqual(again["id"], line_a["id"])

    def test_unknown_line_ids_are_404(self):
        """Unknown and malformed line ids are 404 cart-item-not-found for
        PATCH and DELETE; nothing changes."""
        buyer = self.buyer()
        self.add_ok(buyer, self.listing()["id"], 1)
        before = self.cart(buyer)
        for item_id in (MISSING_ITEM, "nonsense", "cit_", self.listing()["id"], "cit_" + "z" * 200):
            with self.subTest(item=item_id):
                self.assertProblem(self.patch_item(buyer, item_id, {"quantity": 1}), 404, "cart-item-not-found")
                self.assertProblem(self.delete_item(buyer, item_id), 404, "cart-item-not-found")
        self.assertNothingWritten(buyer, before)

    # -- the catalog's current figures --------------------------------------------------------

    def test_a_sellers_price_and_title_change_shows_at_once(self):
        """Prices are never stored in the cart: after the seller changes the
        price (and title), the next read shows the new ones, with new
        subtotal and totals; a change of currency moves the line's sum to
        the other currency."""
        buyer = self.buyer()
        listing = self.listing(price=eur(1000), quantity=5)
        self.add_ok(buyer, listing["id"], 3)
        self.assertEqual(self.cart(buyer)["totals"], [eur(3000)])
        changed = self.seller_patch(listing["id"], {"price": eur(1250), "title": "Repriced lamp"})
        cart = self.cart(buyer)
        line = self.line(cart, listing["id"])
        self.assertLine(line, changed, 3)
        self.assertEqual((line["title"], line["price"], line["subtotal"]), ("Repriced lamp", eur(1250), eur(3750)))
        self.assertEqual(cart["totals"], [eur(3750)])
        self.seller_patch(listing["id"], {"price": usd(999)})
        cart = self.cart(buyer)
        self.assertEqual(self.line(cart, listing["id"])["subtotal"], usd(2997))
        self.assertEqual(self.totals(cart), {"USD": 2997})

    def test_an_unpublished_or_archived_listing_is_unavailable(self):
        """A listing unpublished after it was added shows as `unavailable`
        (title, price and subtotal null), is left out of totals, keeps its
        line and quantity, cannot be added to, and is `ok` again once
        republished; an archived one is `unavailable` for good."""
        buyer = self.buyer()
        keep = self.listing(self.other_seller, price=eur(500), quantity=5)
        hidden = self.listing(price=eur(1000), quantity=5)
        gone = self.listing(price=usd(700), quantity=5)
        self.add_ok(buyer, keep["id"], 1)
        _, hidden_line = self.add_ok(buyer, hidden["id"], 2)
        _, gone_line = self.add_ok(buyer, gone["id"], 1)
        self.assertEqual(self.totals(self.cart(buyer)), {"EUR": 2500, "USD": 700})
        self.seller_action(hidden["id"], "unpublish")
        cart = self.cart(buyer)
        line = self.line(cart, hidden["id"])
        self.assertEqual((line["id"], line["status"], line["quantity"]), (hidden_line["id"], "unavailable", 2))
        self.assertEqual((line["title"], line["price"], line["subtotal"]), (None, None, None))
        self.assertEqual(self.totals(cart), {"EUR": 500, "USD": 700})
        self.assertEqual(len(cart["items"]), 3)
        # It cannot be added to while it is not active; nothing is written.
        self.assertProblem(self.add(buyer, hidden["id"], 1), 404, "listing-not-found")
        self.assertNothingWritten(buyer, cart)
        # Republished: ok again, at the current price.
        self.seller_action(hidden["id"], "publish")
        cart = self.cart(buyer)
        self.assertEqual(self.line(cart, hidden["id"])["status"], "ok")
        self.assertEqual(self.totals(cart), {"EUR": 2500, "USD": 700})
        # Archived: unavailable; the USD total goes away with it.
        self.assertEqual(self.server.request("DELETE", f"/v1/products/{gone['id']}",
                                             headers=self.seller.auth()).status, 204)
        cart = self.cart(buyer)
        line = self.line(cart, gone["id"])
        self.assertEqual((line["id"], line["status"], line["title"], line["price"], line["subtotal"]),
                         (gone_line["id"], "unavailable", None, None, None))
        self.assertEqual(self.totals(cart), {"EUR": 2500})
        # An unavailable line can still be removed.
        self.assertEqual(self.delete_item(buyer, gone_line["id"]).status, 204)
        self.assertEqual(self.totals(self.cart(buyer)), {"EUR": 2500})

    def test_stock_lowered_below_a_line_is_insufficient_stock(self):
        """When the seller lowers the stock below a line's quantity, the line
        shows `insufficient_stock` with `available` the stock now, and still
        counts in totals with its subtotal; lowering the line's quantity, or
        a restock, makes it `ok` again."""
        buyer = self.buyer()
        listing = self.listing(price=eur(1000), quantity=5)
        _, line = self.add_ok(buyer, listing["id"], 4)
        self.assertEqual((line["status"], line["available"]), ("ok", 5))
        self.seller_action(listing["id"], "inventory", {"quantity": 2})
        cart = self.cart(buyer)
        line = self.line(cart, listing["id"])
        self.assertEqual((line["status"], line["available"], line["quantity"], line["subtotal"]),
                         ("insufficient_stock", 2, 4, eur(4000)))
        self.assertEqual(cart["totals"], [eur(4000)])
        self.seller_action(listing["id"], "inventory", {"quantity": 0})
        line = self.line(self.cart(buyer), listing["id"])
        self.assertEqual((line["status"], line["available"]), ("insufficient_stock", 0))
        self.seller_action(listing["id"], "inventory", {"quantity": 2})
        cart = self.assertCart(self.assertJson(self.patch_item(buyer, line["id"], {"quantity": 2}), 200))
        self.assertEqual(self.line(cart, listing["id"])["status"], "ok")
        self.seller_action(listing["id"], "inventory", {"quantity": 1})
        self.assertEqual(self.line(self.cart(buyer), listing["id"])["status"], "insufficient_stock")
        self.seller_action(listing["id"], "inventory", {"delta": 9})
        line = self.line(self.cart(buyer), listing["id"])
        self.assertEqual((line["status"], line["available"]), ("ok", 10))

    # -- refusals: add ------------------------------------------------------------------------

    def test_add_refuses_invalid_bodies_and_writes_nothing(self):
        """Unknown fields, missing fields, wrong types and quantities outside
        1..100 are 400 validation naming the field; malformed JSON 400, a
        wrong Content-Type 415; the cart is unchanged."""
        buyer = self.buyer()
        listing = self.listing(quantity=1000)
        self.add_ok(buyer, self.listing()["id"], 1)
        before = self.cart(buyer)
        pid = listing["id"]
        cases = [
            ("quantity", {"product_id": pid, "quantity": 0}), ("quantity", {"product_id": pid, "quantity": -1}),
            ("quantity", {"product_id": pid, "quantity": 101}), ("quantity", {"product_id": pid, "quantity": 1.5}),
            ("quantity", {"product_id": pid, "quantity": "2"}), ("quantity", {"product_id": pid, "quantity": True}),
            ("quantity", {"product_id": pid, "quantity": None}), ("quantity", {"product_id": pid}),
            ("quantity", {"product_id": pid, "quantity": 2 ** 32}),
            ("product_id", {"quantity": 1}), ("product_id", {"product_id": None, "quantity": 1}),
            ("product_id", {"product_id": 42, "quantity": 1}), ("product_id", {"product_id": [pid], "quantity": 1}),
            ("price", {"product_id": pid, "quantity": 1, "price": eur(1)}),
            ("buyer_id", {"product_id": pid, "quantity": 1, "buyer_id": self.seller.id}),
            ("status", {"product_id": pid, "quantity": 1, "status": "ok"}),
        ]
        for field, body in cases:
            with self.subTest(field=field, body=body):
                r = self.server.request("POST", "/v1/cart/items", body, headers=buyer.auth())
                self.assertFieldError(r, field)
        # Every problem of the body's shape is reported at once.
        r = self.server.request("POST", "/v1/cart/items", {"product_id": 42, "quantity": "2"}, headers=buyer.auth())
        for field in ("product_id", "quantity"):
            self.assertFieldError(r, field)
        for raw in ('{"product_id": "' + pid + '", "quantity": 1', "{product_id: 1}"):
            with self.subTest(raw=raw):
                r = self.server.request("POST", "/v1/cart/items", raw=raw, headers=buyer.auth())
                self.assertProblem(r, 400, "malformed-json")
        for raw in ("[]", "42", '"text"', "null", ""):
            with self.subTest(raw=raw):
                self.assertProblem(self.server.request("POST", "/v1/cart/items", raw=raw, headers=buyer.auth()), 400)
        r = self.server.request("POST", "/v1/cart/items", raw='{"product_id": "' + pid + '", "quantity": 1}',
                                headers={**buyer.auth(), "Content-Type": "text/plain"})
        self.assertProblem(r, 415)
        self.assertNothingWritten(buyer, before)

    def test_add_refuses_listings_that_are_not_for_sale(self):
        """An unknown listing, a draft and an archived one are 404
        listing-not-found; a malformed id is 404 or a validation problem on
        product_id; nothing is written."""
        buyer = self.buyer()
        self.add_ok(buyer, self.listing()["id"], 1)
        before = self.cart(buyer)
        draft = self.listing(publish=False)
        archived = self.listing()
        self.assertEqual(self.server.request("DELETE", f"/v1/products/{archived['id']}",
                                             headers=self.seller.auth()).status, 204)
        unpublished = self.listing()
        self.seller_action(unpublished["id"], "unpublish")
        for pid in (MISSING_PRODUCT, draft["id"], archived["id"], unpublished["id"]):
            with self.subTest(product=pid):
                self.assertProblem(self.add(buyer, pid, 1), 404, "listing-not-found")
        for pid in ("nonsense", "prd_", "", "usr_" + "0" * 26, "prd_" + "z" * 200):
            with self.subTest(product=pid):
                r = self.add(buyer, pid, 1)
                self.assertIn(r.status, (400, 404), r)
                if r.status == 404:
                    self.assertProblem(r, 404, "listing-not-found")
                else:
                    self.assertFieldError(r, "product_id")
        self.assertNothingWritten(buyer, before)

    def test_add_refuses_the_buyers_own_listing(self):
        """A seller cannot put their own listing in their cart: 409
        own-listing, nothing written; another seller's listing is fine."""
        seller = self.server.new_seller()
        own = self.listing(seller)
        before = self.cart(seller)
        self.assertProblem(self.add(seller, own["id"], 1), 409, "own-listing")
        self.assertNothingWritten(seller, before)
        self.add_ok(seller, self.listing()["id"], 1)
        before = self.cart(seller)
        self.assertProblem(self.add(seller, own["id"], 1), 409, "own-listing")
        self.assertNothingWritten(seller, before)

    def test_add_refuses_more_than_is_available(self):
        """A line may not hold more than the listing has available now,
        counting what the line holds already: 409 insufficient-stock,
        nothing written. A listing out of stock cannot be added at all."""
        buyer = self.buyer()
        listing = self.listing(quantity=3)
        before = self.cart(buyer)
        self.assertProblem(self.add(buyer, listing["id"], 4), 409, "insufficient-stock")
        self.assertNothingWritten(buyer, before)
        self.add_ok(buyer, listing["id"], 2)
        before = self.cart(buyer)
        self.assertProblem(self.add(buyer, listing["id"], 2), 409, "insufficient-stock")
        self.assertNothingWritten(buyer, before)
        cart, line = self.add_ok(buyer, listing["id"], 1, status=200)
        self.assertEqual(line["quantity"], 3)
        self.assertProblem(self.add(buyer, listing["id"], 1), 409, "insufficient-stock")
        self.assertNothingWritten(buyer, cart)
        empty = self.listing(quantity=0)
        self.assertProblem(self.add(buyer, empty["id"], 1), 409, "insufficient-stock")
        self.assertNothingWritten(buyer, cart)

    def test_a_line_never_holds_more_than_100(self):
        """Merging past 100 units on one line is a validation problem on
        quantity even when the stock would allow it; nothing is written."""
        buyer = self.buyer()
        listing = self.listing(quantity=1000)
        self.add_ok(buyer, listing["id"], 60)
        before = self.cart(buyer)
        self.assertFieldError(self.add(buyer, listing["id"], 41), "quantity")
        self.assertNothingWritten(buyer, before)
        self.assertEqual(self.add_ok(buyer, listing["id"], 40, status=200)[1]["quantity"], 100)
        before = self.cart(buyer)
        self.assertFieldError(self.add(buyer, listing["id"], 1), "quantity")
        self.assertNothingWritten(buyer, before)

    def test_a_cart_holds_at_most_50_lines(self):
        """The 51st line is 409 cart-full and writes nothing; adding to a line
        that exists still works; after removing a line there is room again."""
        buyer = self.buyer()
        seller = self.server.new_seller(tag="bulk")
        conn = self.server.connection()
        self.addCleanup(conn.close)
        listings = [self.listing(seller, conn=conn, price=eur(100 + i), quantity=5) for i in range(51)]
        lines = []
        for listing in listings[:50]:
            r = self.add(buyer, listing["id"], 1, conn=conn)
            self.assertEqual(r.status, 201, r)
            lines.append(next(x for x in r.body["items"] if x["product_id"] == listing["id"]))
        cart = self.cart(buyer)
        self.assertEqual((len(cart["items"]), cart["item_count"]), (50, 50))
        self.assertEqual(cart["totals"], [eur(sum(100 + i for i in range(50)))])
        self.assertProblem(self.add(buyer, listings[50]["id"], 1), 409, "cart-full")
        self.assertNothingWritten(buyer, cart)
        merged, line = self.add_ok(buyer, listings[0]["id"], 1, status=200)
        self.assertEqual((len(merged["items"]), line["quantity"]), (50, 2))
        self.assertEqual(self.delete_item(buyer, lines[1]["id"]).status, 204)
        cart, line = self.add_ok(buyer, listings[50]["id"], 1)
        self.assertEqual(len(cart["items"]), 50)
        self.assertProblem(self.add(buyer, listings[1]["id"], 1), 409, "cart-full")

    # -- refusals: patch ------------------------------------------------------------------------

    def test_patch_refuses_invalid_bodies_and_writes_nothing(self):
        """quantity is required, an integer 1..100 (0 does not remove the
        line); other fields are refused by name; nothing is written."""
        buyer = self.buyer()
        listing = self.listing(quantity=1000)
        _, line = self.add_ok(buyer, listing["id"], 2)
        before = self.cart(buyer)
        for field, body in (("quantity", {"quantity": 0}), ("quantity", {"quantity": -1}),
                            ("quantity", {"quantity": 101}), ("quantity", {"quantity": 1.5}),
                            ("quantity", {"quantity": "2"}), ("quantity", {"quantity": True}),
                            ("quantity", {"quantity": None}), ("quantity", {}),
                            ("product_id", {"quantity": 3, "product_id": self.listing()["id"]}),
                            ("id", {"quantity": 3, "id": MISSING_ITEM}), ("price", {"quantity": 3, "price": eur(1)})):
            with self.subTest(body=body):
                self.assertFieldError(self.patch_item(buyer, line["id"], body), field)
        for raw in ("{", "[]", "null"):
            with self.subTest(raw=raw):
                self.assertProblem(self.patch_item(buyer, line["id"], raw=raw), 400)
        self.assertProblem(self.patch_item(buyer, line["id"], raw='{"quantity": 3}',
                                           headers={"Content-Type": "text/plain"}), 415)
        self.assertNothingWritten(buyer, before)

    def test_patch_refuses_more_than_is_available(self):
        """PATCH checks the new quantity against the stock now: above it is
        409 insufficient-stock and nothing changes; exactly the stock is
        fine."""
        buyer = self.buyer()
        listing = self.listing(quantity=3)
        _, line = self.add_ok(buyer, listing["id"], 1)
        before = self.cart(buyer)
        self.assertProblem(self.patch_item(buyer, line["id"], {"quantity": 4}), 409, "insufficient-stock")
        self.assertNothingWritten(buyer, before)
        cart = self.assertCart(self.assertJson(self.patch_item(buyer, line["id"], {"quantity": 3}), 200))
        self.assertEqual(self.line(cart, listing["id"])["quantity"], 3)

    def test_card_numbers_are_refused(self):
        """A card number anywhere in a cart body is 400 card-data-refused;
        nothing is written."""
        buyer = self.buyer()
        listing = self.listing(quantity=10)
        _, line = self.add_ok(buyer, listing["id"], 1)
        before = self.cart(buyer)
        self.assertProblem(self.add(buyer, listing["id"], 1, note=CARD), 400, "card-data-refused")
        self.assertProblem(self.add(buyer, listing["id"], 1, card_number=CARD.replace(" ", "")), 400,
                           "card-data-refused")
        self.assertProblem(self.patch_item(buyer, line["id"], {"quantity": 2, "card": CARD}), 400,
                           "card-data-refused")
        self.assertNothingWritten(buyer, before)

    # -- who may see what -------------------------------------------------------------------------

    def test_carts_are_per_user(self):
        """Two buyers' carts are separate: each sees only their own lines; the
        other's line ids are 404 for PATCH and DELETE (never 403) and stay as
        they were. The cart reserves nothing: both may hold all the stock."""
        alice, bob = self.buyer("alice"), self.buyer("bob")
        shared = self.listing(quantity=3)
        only_bob = self.listing(self.other_seller, price=usd(250))
        _, alice_line = self.add_ok(alice, shared["id"], 3)
        _, bob_line = self.add_ok(bob, shared["id"], 3)
        self.add_ok(bob, only_bob["id"], 2)
        self.assertNotEqual(alice_line["id"], bob_line["id"])
        alice_cart, bob_cart = self.cart(alice), self.cart(bob)
        self.assertEqual([x["id"] for x in alice_cart["items"]], [alice_line["id"]])
        self.assertEqual(len(bob_cart["items"]), 2)
        self.assertNotIn(alice_line["id"], [x["id"] for x in bob_cart["items"]])
        self.assertEqual((self.totals(alice_cart), self.totals(bob_cart)),
                         ({"EUR": 3 * 1999}, {"EUR": 3 * 1999, "USD": 500}))
        r = self.patch_item(alice, bob_line["id"], {"quantity": 1})
        self.assertProblem(r, 404, "cart-item-not-found")
        self.assertProblem(self.delete_item(alice, bob_line["id"]), 404, "cart-item-not-found")
        self.assertEqual(self.cart(bob), bob_cart)
        self.assertEqual(self.cart(alice), alice_cart)
        # The listing's stock is untouched by carts.
        self.assertEqual(self.server.request("GET", f"/v1/products/{shared['id']}").body["quantity"], 3)
        # Bob's own line is still his to change.
        self.assertEqual(self.patch_item(bob, bob_line["id"], {"quantity": 1}).status, 200)
        self.assertEqual(self.delete_item(bob, bob_line["id"]).status, 204)
        self.assertEqual(self.cart(alice), alice_cart)

    def test_every_cart_route_needs_a_valid_token(self):
        """No token, or a broken one, is 401 with WWW-Authenticate: Bearer on
        every cart route; nothing is written."""
        buyer = self.buyer()
        listing = self.listing()
        _, line = self.add_ok(buyer, listing["id"], 1)
        before = self.cart(buyer)
        routes = (("GET", "/v1/cart", None), ("POST", "/v1/cart/items", {"product_id": listing["id"], "quantity": 1}),
                  ("PATCH", f"/v1/cart/items/{line['id']}", {"quantity": 2}),
                  ("DELETE", f"/v1/cart/items/{line['id']}", None))
        for headers in ({}, bearer("garbage"), bearer(buyer.access + "x")):
            for method, path, body in routes:
                with self.subTest(method=method, auth=bool(headers)):
                    r = self.server.request(method, path, body, headers=headers)
                    self.assertProblem(r, 401)
                    self.assertIn("Bearer", r.headers.get("WWW-Authenticate") or "")
        self.assertNothingWritten(buyer, before)

    def test_a_cart_survives_a_restart(self):
        """Lines (ids, quantities, timestamps) are durable across a clean
        restart."""
        server = Server("--login-max-failures", "1000", database=self.database)
        self.addCleanup(server.stop)
        seller = server.new_seller()
        buyer = server.new_user(tag="buyer")
        listing = create_listing(server, seller, leaf_categories(server)[0]["id"], publish=True, quantity=4)
        r = server.request("POST", "/v1/cart/items", {"product_id": listing["id"], "quantity": 2},
                           headers=buyer.auth())
        self.assertEqual(r.status, 201, r)
        before = self.assertCart(self.assertJson(server.request("GET", "/v1/cart", headers=buyer.auth()), 200))
        self.assertEqual(server.restart(), 0)
        buyer.tokens = server.login(buyer.email).body  # the issuer (port) changed
        after = self.assertCart(self.assertJson(server.request("GET", "/v1/cart", headers=buyer.auth()), 200))
        self.assertEqual(after, before)


class CartOnSqlite(CartFlows, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class CartOnPostgres(CartFlows, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
