"""Catalog flows against the real server, on SQLite and on PostgreSQL.

CatalogFlows holds the tests; CatalogOnSqlite and CatalogOnPostgres run them
on each store. The tests share a class-wide server; each makes its own
sellers (and, where a list must hold only its own rows, its own categories
or a `seller=` filter), so they do not see each other's listings.

The second half (bad input) checks that every refusal is a 4xx
application/problem+json naming the field or parameter, and that nothing was
written: the seller's own listing list (`GET /v1/sellers/me/products`) is
unchanged after a refused create, and the listing (version included) is
unchanged after a refused change.

Where the contract was silent these tests assume: price bounds of browse are
inclusive; a category's `path` ends with the category itself (as a listing's
`category_path` does); category names are read live, so a rename shows in a
listing's `category_path`; nested field errors are named with dots or
brackets under the top-level field (`price.amount`, `shipping…`).
"""

import json
import re
import secrets
import time
import unittest

from tests.http.agora import (ProblemAssertions, Server, bearer, category_tree, collect_pages, create_listing, etag,
                              leaf_categories, listing_body, pg_url, walk_categories, with_query)

PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LISTING_KEYS = {"id", "seller_id", "title", "description", "price", "quantity", "in_stock", "category_id",
                "category_path", "condition", "attributes", "images", "shipping", "status", "version", "created_at",
                "updated_at", "published_at"}
MISSING_PRODUCT = "prd_" + "0" * 26
MISSING_CATEGORY = "cat_" + "0" * 26


class CatalogFlows(ProblemAssertions):
    database = None  # "sqlite" or "postgres", set by the concrete classes

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--login-max-failures", "1000", database=cls.database)
        cls.seller = cls.server.new_seller(display_name="Sam Seller")
        cls.other_seller = cls.server.new_seller(display_name="Olga Other")
        cls.buyer = cls.server.new_user(tag="buyer")
        cls.admin = cls.server.new_admin()
        leaves = leaf_categories(cls.server)
        cls.category = leaves[0]
        cls.category2 = leaves[1] if len(leaves) > 1 else leaves[0]

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    # -- helpers -------------------------------------------------------------------

    def create(self, seller=None, publish=False, **override):
        return create_listing(self.server, seller or self.seller, override.pop("category_id", self.category["id"]),
                              publish=publish, **override)

    def get(self, listing_id, account=None, headers=None):
        hdrs = dict(headers or {})
        if account is not None:
            hdrs.update(account.auth())
        return self.server.request("GET", f"/v1/products/{listing_id}", headers=hdrs)

    def owner_view(self, listing_id, seller=None):
        r = self.get(listing_id, seller or self.seller)
        return self.assertJson(r, 200)

    def patch(self, listing_id, body, version=None, account=None, if_match=None):
        headers = dict((account or self.seller).auth())
        if if_match is not None:
            headers["If-Match"] = if_match
        elif version is not None:
            headers["If-Match"] = etag(version)
        return self.server.request("PATCH", f"/v1/products/{listing_id}", body, headers=headers)

    def action(self, listing_id, verb, account=None, body=None, if_match=None):
        headers = dict((account or self.seller).auth())
        if if_match is not None:
            headers["If-Match"] = if_match
        return self.server.request("POST", f"/v1/products/{listing_id}/{verb}", body, headers=headers)

    def delete(self, listing_id, account=None, if_match=None):
        headers = dict((account or self.seller).auth())
        if if_match is not None:
            headers["If-Match"] = if_match
        return self.server.request("DELETE", f"/v1/products/{listing_id}", headers=headers)

    def browse(self, **params):
        return self.server.request("GET", with_query("/v1/products", **params))

    def browse_ids(self, **params):
        items, _ = collect_pages(self.server, "/v1/products", **params)
        return [x["id"] for x in items]

    def my_listings(self, seller, **params):
        items, _ = collect_pages(self.server, "/v1/sellers/me/products", headers=seller.auth(), **params)
        return items

    def new_category(self, name=None, parent_id=None, **extra):
        body = {"name": name or f"Test category {secrets.token_hex(3)}", **extra}
        if parent_id is not None:
            body["parent_id"] = parent_id
        r = self.server.request("POST", "/v1/categories", body, headers=self.admin.auth())
        return self.assertJson(r, 201)

    def assertListingShape(self, listing):
        self.assertTrue(LISTING_KEYS <= set(listing), f"missing {LISTING_KEYS - set(listing)} in {listing}")
        self.assertRegex(listing["id"], r"^prd_[0-9A-Za-z]{10,}$")
        self.assertRegex(listing["created_at"], RFC3339_MS_UTC)
        self.assertRegex(listing["updated_at"], RFC3339_MS_UTC)
        if listing["published_at"] is not None:
            self.assertRegex(listing["published_at"], RFC3339_MS_UTC)
        self.assertIs(listing["in_stock"], listing["quantity"] > 0)
        self.assertIsInstance(listing["version"], int)

    def assertFieldError(self, response, field, status=400):
        """A validation problem with an error for `field` or a field nested
        under it (`price` covers `price.amount`, `shipping` covers `shipping.0.x`
        and `shipping[0].x`)."""
        body = self.assertProblem(response, status, "validation")
        named = [e.get("field", "") for e in body.get("errors", [])]
        self.assertTrue(any(n == field or n.startswith(field + ".") or n.startswith(field + "[") for n in named),
                        f"no error for field {field!r} in {body}")
        return body

    # -- create and read -------------------------------------------------------------

    def test_create_answers_a_draft_with_location_and_etag(self):
        """POST /v1/products answers 201, Location, ETag "v1", and the listing
        as sent, as a draft of the caller; optional fields get their defaults."""
        body = listing_body(self.category["id"], title="Road bike, 56 cm",
                            attributes={"brand": "Acme", "colour": "red"},
                            images=["https://img.example.com/a.jpg", "https://img.example.com/b.jpg"])
        r = self.server.request("POST", "/v1/products", body, headers=self.seller.auth())
        listing = self.assertJson(r, 201)
        self.assertListingShape(listing)
        self.assertEqual(r.headers.get("Location"), f"/v1/products/{listing['id']}")
        self.assertEqual(r.headers.get("ETag"), '"v1"')
        self.assertEqual(listing["version"], 1)
        self.assertEqual(listing["status"], "draft")
        self.assertIsNone(listing["published_at"])
        self.assertEqual(listing["seller_id"], self.seller.id)
        for key in ("title", "description", "price", "quantity", "category_id", "condition", "attributes", "images",
                    "shipping"):
            self.assertEqual(listing[key], body[key], key)
        self.assertIs(listing["in_stock"], True)
        self.assertEqual(listing["category_path"][-1]["id"], self.category["id"])
        self.assertEqual(listing["category_path"][-1]["name"], self.category["name"])
        self.assertEqual(listing["reserved"], 0)  # the seller sees it
        # The minimal body: defaults.
        minimal = {"title": "Bare", "price": {"amount": 0, "currency": "USD"}, "category_id": self.category["id"],
                   "condition": "poor"}
        listing = self.assertJson(self.server.request("POST", "/v1/products", minimal, headers=self.seller.auth()),
                                  201)
        self.assertEqual((listing["description"], listing["quantity"], listing["attributes"], listing["images"],
                          listing["shipping"], listing["in_stock"]), ("", 0, {}, [], [], False))
        self.assertEqual(self.owner_view(listing["id"])["title"], "Bare")

    def test_drafts_are_visible_only_to_their_seller_and_admins(self):
        """A draft is 404 for anonymous callers, buyers and other sellers, and
        readable (with `reserved`) by its seller and by admins."""
        listing = self.create()
        self.assertProblem(self.get(listing["id"]), 404, "listing-not-found")
        self.assertProblem(self.get(listing["id"], self.buyer), 404, "listing-not-found")
        self.assertProblem(self.get(listing["id"], self.other_seller), 404, "listing-not-found")
        for who in (self.seller, self.admin):
            seen = self.assertJson(self.get(listing["id"], who), 200)
            self.assertEqual(seen["status"], "draft")
            self.assertEqual(seen["reserved"], 0)

    def test_publish_makes_a_listing_public_and_unpublish_hides_it(self):
        """publish: draft -> active (public, published_at set, version + 1);
        again: 200 unchanged. unpublish: active -> draft (404 for the public);
        again: 200 unchanged. Only the owner and admins see `reserved`."""
        listing = self.create()
        r = self.action(listing["id"], "publish")
        active = self.assertJson(r, 200)
        self.assertEqual(active["status"], "active")
        self.assertRegex(active["published_at"], RFC3339_MS_UTC)
        self.assertEqual(active["version"], 2)
        self.assertEqual(r.headers.get("ETag"), '"v2"')
        again = self.assertJson(self.action(listing["id"], "publish"), 200)
        self.assertEqual((again["status"], again["version"], again["published_at"]),
                         ("active", 2, active["published_at"]))
        for who in (None, self.buyer, self.other_seller):
            seen = self.assertJson(self.get(listing["id"], who), 200)
            self.assertEqual(seen["status"], "active")
            self.assertNotIn("reserved", seen, "only the seller and admins see reserved")
        self.assertIn("reserved", self.owner_view(listing["id"]))
        self.assertIn("reserved", self.assertJson(self.get(listing["id"], self.admin), 200))
        draft = self.assertJson(self.action(listing["id"], "unpublish"), 200)
        self.assertEqual((draft["status"], draft["version"]), ("draft", 3))
        self.assertProblem(self.get(listing["id"]), 404, "listing-not-found")
        again = self.assertJson(self.action(listing["id"], "unpublish"), 200)
        self.assertEqual((again["status"], again["version"]), ("draft", 3))
        # An admin may publish anyone's listing.
        self.assertEqual(self.assertJson(self.action(listing["id"], "publish", self.admin), 200)["status"], "active")

    def test_a_bad_bearer_token_on_the_public_read_is_401(self):
        """GET /v1/products/{id} is public, but a token that is sent must be
        valid: a broken one is 401, not an anonymous read."""
        listing = self.create(publish=True)
        for token in ("garbage", self.buyer.access + "x", self.buyer.access[:-4] + "AAAA"):
            with self.subTest(token=token[-10:]):
                r = self.get(listing["id"], headers=bearer(token))
                self.assertProblem(r, 401)
                self.assertIn("Bearer", r.headers.get("WWW-Authenticate") or "")
        self.assertEqual(self.get(listing["id"]).status, 200)

    def test_etag_cache_control_and_if_none_match(self):
        """Reads carry ETag "v<version>"; anonymous reads of an active listing
        are publicly cacheable, the owner's view is private, no-cache; the
        current ETag in If-None-Match answers 304 with no body, an old one 200."""
        listing = self.create(publish=True)
        r = self.get(listing["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("ETag"), etag(listing["version"]))
        cache = (r.headers.get("Cache-Control") or "").lower()
        self.assertIn("public", cache)
        self.assertRegex(cache, r"max-age=\d+")
        owner = self.get(listing["id"], self.seller)
        self.assertEqual(owner.headers.get("ETag"), etag(listing["version"]))
        owner_cache = {d.strip() for d in (owner.headers.get("Cache-Control") or "").lower().split(",")}
        self.assertTrue({"private", "no-cache"} <= owner_cache, owner.headers.get("Cache-Control"))
        for who in (None, self.seller):
            with self.subTest(owner=who is not None):
                r = self.get(listing["id"], who, headers={"If-None-Match": etag(listing["version"])})
                self.assertEqual(r.status, 304, r)
                self.assertEqual(r.raw, b"")
                self.assertEqual(r.headers.get("ETag"), etag(listing["version"]))
        changed = self.assertJson(self.patch(listing["id"], {"title": "Changed title"}, listing["version"]), 200)
        r = self.get(listing["id"], headers={"If-None-Match": etag(listing["version"])})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["title"], "Changed title")
        self.assertEqual(r.headers.get("ETag"), etag(changed["version"]))

    # -- updates ---------------------------------------------------------------------

    def test_patch_requires_if_match_and_refuses_stale_versions(self):
        """PATCH without If-Match is 428, with an old version 412; neither
        writes. With the current version it changes only the fields sent and
        answers the new version in the body and the ETag."""
        listing = self.create()
        self.assertProblem(self.patch(listing["id"], {"title": "No precondition"}), 428, "precondition-required")
        unchanged = self.owner_view(listing["id"])
        self.assertEqual((unchanged["version"], unchanged["title"]), (1, listing["title"]))
        r = self.patch(listing["id"], {"title": "New title", "price": {"amount": 2500, "currency": "EUR"}}, 1)
        updated = self.assertJson(r, 200)
        self.assertEqual(r.headers.get("ETag"), '"v2"')
        self.assertEqual((updated["version"], updated["title"], updated["price"]),
                         (2, "New title", {"amount": 2500, "currency": "EUR"}))
        for key in ("description", "quantity", "category_id", "condition", "attributes", "images", "shipping",
                    "created_at", "seller_id", "status"):
            self.assertEqual(updated[key], listing[key], key)
        stale = self.patch(listing["id"], {"title": "Lost update"}, 1)
        self.assertProblem(stale, 412, "stale-version")
        self.assertProblem(self.patch(listing["id"], {"title": "Future"}, 9), 412, "stale-version")
        after = self.owner_view(listing["id"])
        self.assertEqual((after["version"], after["title"]), (2, "New title"))
        # The whole of attributes, images and shipping are replaced; an empty patch is fine.
        r = self.patch(listing["id"], {"attributes": {"size": "L"}, "images": [], "shipping": []}, 2)
        self.assertEqual(self.assertJson(r, 200)["attributes"], {"size": "L"})
        self.assertEqual((r.body["images"], r.body["shipping"]), ([], []))

    def test_only_the_owner_and_admins_may_change_a_listing(self):
        """Another seller's listing is 404 for every write (never 403, so its
        existence does not leak); a buyer is 403 by role, no token 401; an
        admin may change any listing."""
        listing = self.create(publish=True)
        other = self.other_seller
        self.assertProblem(self.patch(listing["id"], {"title": "Hijacked"}, listing["version"], other), 404,
                           "listing-not-found")
        self.assertProblem(self.action(listing["id"], "unpublish", other), 404, "listing-not-found")
        self.assertProblem(self.action(listing["id"], "inventory", other, {"quantity": 0}), 404, "listing-not-found")
        self.assertProblem(self.delete(listing["id"], other), 404, "listing-not-found")
        self.assertProblem(self.patch(listing["id"], {"title": "Hijacked"}, listing["version"], self.buyer), 403)
        self.assertProblem(self.server.request("PATCH", f"/v1/products/{listing['id']}", {"title": "Hijacked"},
                                               headers={"If-Match": etag(listing["version"])}), 401)
        self.assertProblem(self.server.request("POST", "/v1/products", listing_body(self.category["id"]),
                                               headers=self.buyer.auth()), 403)
        after = self.owner_view(listing["id"])
        self.assertEqual((after["title"], after["status"], after["quantity"], after["version"]),
                         (listing["title"], "active", listing["quantity"], listing["version"]))
        r = self.patch(listing["id"], {"title": "Fixed by an admin"}, listing["version"], self.admin)
        self.assertEqual(self.assertJson(r, 200)["title"], "Fixed by an admin")
        self.assertEqual(r.body["seller_id"], self.seller.id)

    def test_archiving_is_a_final_soft_delete(self):
        """DELETE archives (204): the public gets 404, the owner reads it as
        archived; every later change, and archiving again, is 409
        listing-archived."""
        listing = self.create(publish=True)
        r = self.delete(listing["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertProblem(self.get(listing["id"]), 404, "listing-not-found")
        self.assertProblem(self.get(listing["id"], self.buyer), 404, "listing-not-found")
        archived = self.owner_view(listing["id"])
        self.assertEqual(archived["status"], "archived")
        self.assertEqual(self.assertJson(self.get(listing["id"], self.admin), 200)["status"], "archived")
        v = archived["version"]
        self.assertProblem(self.patch(listing["id"], {"title": "Revived"}, v), 409, "listing-archived")
        self.assertProblem(self.action(listing["id"], "publish"), 409, "listing-archived")
        self.assertProblem(self.action(listing["id"], "unpublish"), 409, "listing-archived")
        self.assertProblem(self.action(listing["id"], "inventory", body={"delta": 1}), 409, "listing-archived")
        self.assertProblem(self.delete(listing["id"]), 409, "listing-archived")
        self.assertEqual(self.owner_view(listing["id"]), archived)
        self.assertNotIn(listing["id"], self.browse_ids(seller=self.seller.id, limit=100))

    def test_if_match_is_honoured_where_it_is_optional(self):
        """publish, unpublish, inventory and DELETE accept If-Match: a stale
        one is 412 and changes nothing; the current one works."""
        listing = self.create()
        stale = etag(listing["version"] + 5)
        self.assertProblem(self.action(listing["id"], "publish", if_match=stale), 412, "stale-version")
        self.assertProblem(self.action(listing["id"], "inventory", body={"delta": 1}, if_match=stale), 412,
                           "stale-version")
        self.assertProblem(self.delete(listing["id"], if_match=stale), 412, "stale-version")
        after = self.owner_view(listing["id"])
        self.assertEqual((after["status"], after["quantity"], after["version"]), ("draft", 3, listing["version"]))
        active = self.assertJson(self.action(listing["id"], "publish", if_match=etag(listing["version"])), 200)
        self.assertProblem(self.action(listing["id"], "unpublish", if_match=etag(listing["version"])), 412,
                           "stale-version")
        self.assertEqual(self.owner_view(listing["id"])["status"], "active")
        r = self.delete(listing["id"], if_match=etag(active["version"]))
        self.assertEqual(r.status, 204, r)

    # -- stock -------------------------------------------------------------------------

    def test_inventory_adjustments(self):
        """delta adds or removes, quantity sets; each bumps the version; stock
        never goes below 0 (409 insufficient-stock, nothing written); in_stock
        follows quantity."""
        listing = self.create(quantity=3)
        r = self.action(listing["id"], "inventory", body={"delta": 5, "reason": "delivery"})
        after = self.assertJson(r, 200)
        self.assertEqual((after["quantity"], after["version"]), (8, 2))
        self.assertEqual(r.headers.get("ETag"), '"v2"')
        after = self.assertJson(self.action(listing["id"], "inventory", body={"delta": -8}), 200)
        self.assertEqual((after["quantity"], after["in_stock"]), (0, False))
        self.assertProblem(self.action(listing["id"], "inventory", body={"delta": -1}), 409, "insufficient-stock")
        after = self.assertJson(self.action(listing["id"], "inventory", body={"quantity": 2}), 200)
        self.assertEqual((after["quantity"], after["in_stock"], after["version"]), (2, True, 4))
        self.assertProblem(self.action(listing["id"], "inventory", body={"delta": -3}), 409, "insufficient-stock")
        after = self.assertJson(self.action(listing["id"], "inventory", body={"quantity": 1_000_000}), 200)
        self.assertEqual(after["quantity"], 1_000_000)
        # Above the maximum is a validation problem, not a conflict.
        self.assertProblem(self.action(listing["id"], "inventory", body={"delta": 1}), 400, "validation")
        now = self.owner_view(listing["id"])
        self.assertEqual((now["quantity"], now["version"]), (1_000_000, 5))
        # An admin may restock anyone's listing.
        self.assertEqual(self.assertJson(self.action(listing["id"], "inventory", self.admin, {"quantity": 7}),
                                         200)["quantity"], 7)

    # -- a seller's own listings -------------------------------------------------------------

    def test_my_listings_hold_every_status_newest_first(self):
        """GET /v1/sellers/me/products: the caller's own listings only, of
        every status, newest first, with `status` filter and pages."""
        seller = self.server.new_seller()
        draft = self.create(seller, title="Mine draft")
        time.sleep(0.005)  # distinct creation milliseconds, so newest first has one right order
        active = self.create(seller, publish=True, title="Mine active")
        time.sleep(0.005)
        gone = self.create(seller, publish=True, title="Mine archived")
        self.assertEqual(self.delete(gone["id"], seller).status, 204)
        self.create(self.other_seller, title="Not mine")
        mine = self.my_listings(seller)
        self.assertEqual([x["id"] for x in mine], [gone["id"], active["id"], draft["id"]])
        self.assertEqual([x["status"] for x in mine], ["archived", "active", "draft"])
        for x in mine:
            self.assertEqual(x["seller_id"], seller.id)
            self.assertIn("reserved", x)
        for status, expected in (("draft", draft), ("active", active), ("archived", gone)):
            with self.subTest(status=status):
                self.assertEqual([x["id"] for x in self.my_listings(seller, status=status)], [expected["id"]])
        items, pages = collect_pages(self.server, "/v1/sellers/me/products", headers=seller.auth(), limit=1)
        self.assertEqual(([x["id"] for x in items], pages), ([x["id"] for x in mine], 3))
        r = self.server.request("GET", "/v1/sellers/me/products", headers=self.buyer.auth())
        self.assertProblem(r, 403)
        self.assertProblem(self.server.request("GET", "/v1/sellers/me/products"), 401)
        self.assertFieldError(self.server.request("GET", "/v1/sellers/me/products?status=sold",
                                                  headers=seller.auth()), "status")

    # -- browse ----------------------------------------------------------------------------

    def test_browse_shows_active_listings_only_and_filters_them(self):
        """Browse lists active listings only (drafts and archived ones never);
        seller, price bounds (inclusive), currency, condition (comma list) and
        in_stock filter; a listing with stock 0 shows with in_stock=false."""
        seller = self.server.new_seller()
        cheap = self.create(seller, publish=True, price={"amount": 1000, "currency": "EUR"}, condition="new")
        mid = self.create(seller, publish=True, price={"amount": 2000, "currency": "EUR"}, condition="good")
        dear = self.create(seller, publish=True, price={"amount": 3000, "currency": "USD"}, condition="fair",
                           quantity=0)
        self.create(seller, price={"amount": 2000, "currency": "EUR"})  # a draft
        archived = self.create(seller, publish=True, price={"amount": 2000, "currency": "EUR"})
        self.assertEqual(self.delete(archived["id"], seller).status, 204)
        r = self.browse(seller=seller.id)
        page = self.assertJson(r, 200)
        self.assertEqual(set(page), {"data", "next_cursor"})
        self.assertIsNone(page["next_cursor"])
        self.assertEqual({x["id"] for x in page["data"]}, {cheap["id"], mid["id"], dear["id"]})
        for x in page["data"]:
            self.assertListingShape(x)
            self.assertEqual(x["status"], "active")
            self.assertNotIn("reserved", x)

        def ids(**params):
            return set(self.browse_ids(seller=seller.id, **params))

        self.assertEqual(ids(min_price=2000), {mid["id"], dear["id"]})
        self.assertEqual(ids(max_price=2000), {cheap["id"], mid["id"]})
        self.assertEqual(ids(min_price=1500, max_price=2500), {mid["id"]})
        self.assertEqual(ids(min_price=4000), set())
        self.assertEqual(ids(currency="USD"), {dear["id"]})
        self.assertEqual(ids(condition="new"), {cheap["id"]})
        self.assertEqual(ids(condition="new,fair"), {cheap["id"], dear["id"]})
        self.assertEqual(ids(in_stock="true"), {cheap["id"], mid["id"]})
        self.assertEqual(ids(in_stock="false"), {dear["id"]})
        # Stock to zero moves a listing between the in_stock filters.
        self.assertEqual(self.action(cheap["id"], "inventory", seller, {"quantity": 0}).status, 200)
        self.assertEqual(ids(in_stock="false"), {cheap["id"], dear["id"]})
        self.assertEqual(ids(in_stock="true"), {mid["id"]})
        # Unpublishing removes it from browse.
        self.assertEqual(self.action(mid["id"], "unpublish", seller).status, 200)
        self.assertEqual(ids(), {cheap["id"], dear["id"]})

    def test_browse_by_category_includes_descendants(self):
        """category=<id> lists listings in the category and in all its
        descendants, not in its ancestors or siblings."""
        root = self.new_category()
        child = self.new_category(parent_id=root["id"])
        grandchild = self.new_category(parent_id=child["id"])
        sibling = self.new_category(parent_id=root["id"])
        in_root = self.create(publish=True, category_id=root["id"])
        in_child = self.create(publish=True, category_id=child["id"])
        in_grandchild = self.create(publish=True, category_id=grandchild["id"])
        in_sibling = self.create(publish=True, category_id=sibling["id"])
        self.assertEqual(set(self.browse_ids(category=root["id"])),
                         {in_root["id"], in_child["id"], in_grandchild["id"], in_sibling["id"]})
        self.assertEqual(set(self.browse_ids(category=child["id"])), {in_child["id"], in_grandchild["id"]})
        self.assertEqual(set(self.browse_ids(category=grandchild["id"])), {in_grandchild["id"]})
        self.assertEqual([x["id"] for x in in_grandchild["category_path"]],
                         [root["id"], child["id"], grandchild["id"]])

    def test_browse_sorts_and_pages_without_duplicates_or_gaps(self):
        """newest is by publication time (not creation); price_asc/price_desc
        order by price; following next_cursor with a small limit returns every
        listing exactly once in the same order as one big page, ties included."""
        seller = self.server.new_seller()
        prices = [500, 1500, 1500, 1500, 250, 9000, 1500]
        created = [self.create(seller, price={"amount": p, "currency": "EUR"}) for p in prices]
        publish_order = list(reversed(created))  # the oldest created is published last
        for listing in publish_order:
            self.assertEqual(self.action(listing["id"], "publish", seller).status, 200)
            time.sleep(0.005)  # distinct publication milliseconds, so newest has one right order
        everything = {x["id"] for x in created}
        newest, pages = collect_pages(self.server, "/v1/products", seller=seller.id, limit=2)
        self.assertEqual(pages, 4)
        self.assertEqual([x["id"] for x in newest], [x["id"] for x in reversed(publish_order)])
        published = [x["published_at"] for x in newest]
        self.assertEqual(published, sorted(published, reverse=True))
        for sort, reverse in (("price_asc", False), ("price_desc", True)):
            with self.subTest(sort=sort):
                one_page = self.browse_ids(seller=seller.id, sort=sort, limit=100)
                paged, pages = collect_pages(self.server, "/v1/products", seller=seller.id, sort=sort, limit=2)
                paged_ids = [x["id"] for x in paged]
                self.assertEqual(len(paged_ids), len(set(paged_ids)), "a listing came twice")
                self.assertEqual(set(paged_ids), everything, "a listing was skipped")
                self.assertEqual(paged_ids, one_page)
                amounts = [x["price"]["amount"] for x in paged]
                self.assertEqual(amounts, sorted(amounts, reverse=reverse))
        self.assertEqual(self.browse_ids(seller=seller.id, sort="newest", limit=100), [x["id"] for x in newest])

    def test_a_listing_published_between_pages_does_not_duplicate_or_skip_others(self):
        """Paging is keyed on the last row, not an offset: a listing published
        while a client pages does not shift the later pages."""
        seller = self.server.new_seller()
        first = [self.create(seller, publish=True) for _ in range(4)]
        r = self.assertJson(self.browse(seller=seller.id, limit=2), 200)
        seen = [x["id"] for x in r["data"]]
        late = self.create(seller, publish=True)  # the newest: it sorts before the cursor
        r2 = self.assertJson(self.browse(seller=seller.id, limit=2, cursor=r["next_cursor"]), 200)
        seen += [x["id"] for x in r2["data"]]
        self.assertEqual(len(seen), len(set(seen)), "a listing came twice")
        self.assertEqual(set(seen), {x["id"] for x in first})
        self.assertIsNone(r2["next_cursor"])
        self.assertIn(late["id"], self.browse_ids(seller=seller.id))

    def test_tampered_cursors_and_cursors_of_another_sort_are_refused(self):
        """A next_cursor with one character changed, a made-up one, or one
        used with another sort is 400 invalid-cursor."""
        seller = self.server.new_seller()
        for _ in range(3):
            self.create(seller, publish=True)
        page = self.assertJson(self.browse(seller=seller.id, limit=1), 200)
        cursor = page["next_cursor"]
        self.assertIsInstance(cursor, str)
        self.assertEqual(self.browse(seller=seller.id, limit=1, cursor=cursor).status, 200)
        i = len(cursor) // 2
        flipped = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]
        for bad in (flipped, cursor[:-2], cursor + "x", "nonsense", "e30"):
            with self.subTest(cursor=bad[-12:]):
                self.assertProblem(self.browse(seller=seller.id, limit=1, cursor=bad), 400, "invalid-cursor")
        self.assertProblem(self.browse(seller=seller.id, limit=1, cursor=cursor, sort="price_asc"), 400,
                           "invalid-cursor")
        asc = self.assertJson(self.browse(seller=seller.id, limit=1, sort="price_asc"), 200)["next_cursor"]
        self.assertProblem(self.browse(seller=seller.id, limit=1, cursor=asc), 400, "invalid-cursor")

    def test_browse_answers_304_to_a_current_etag(self):
        """Browse pages carry an ETag and Cache-Control; If-None-Match with
        the ETag answers 304 with no body until the page changes."""
        seller = self.server.new_seller()
        self.create(seller, publish=True)
        path = with_query("/v1/products", seller=seller.id)
        r = self.server.request("GET", path)
        self.assertEqual(r.status, 200, r)
        tag = r.headers.get("ETag")
        self.assertTrue(tag, "no ETag on browse")
        self.assertTrue(r.headers.get("Cache-Control"))
        again = self.server.request("GET", path, headers={"If-None-Match": tag})
        self.assertEqual(again.status, 304, again)
        self.assertEqual(again.raw, b"")
        self.create(seller, publish=True)
        changed = self.server.request("GET", path, headers={"If-None-Match": tag})
        self.assertEqual(changed.status, 200, changed)
        self.assertEqual(len(changed.body["data"]), 2)
        self.assertNotEqual(changed.headers.get("ETag"), tag)

    # -- categories --------------------------------------------------------------------------

    def test_a_fresh_install_has_a_default_category_tree(self):
        """GET /v1/categories: a tree of roots with children, ids cat_…,
        parent_id null for roots and the parent's id below; Electronics holds
        Phones and Computers."""
        r = self.server.request("GET", "/v1/categories")
        body = self.assertJson(r, 200)
        self.assertIsNone(body["next_cursor"])
        roots = body["data"]
        self.assertGreaterEqual(len(roots), 5)
        by_name = {n["name"]: n for n in roots}
        for name in ("Electronics", "Fashion", "Books & Media"):
            self.assertIn(name, by_name)
        self.assertTrue({"Phones", "Computers"} <= {c["name"] for c in by_name["Electronics"]["children"]})
        slugs = set()
        for node in roots:
            self.assertIsNone(node["parent_id"])
        for node, _ in walk_categories(roots):
            self.assertRegex(node["id"], r"^cat_[0-9A-Za-z]{10,}$")
            self.assertRegex(node["slug"], r"^[a-z0-9-]{1,60}$")
            self.assertIsInstance(node["position"], int)
            self.assertNotIn(node["slug"], slugs)
            slugs.add(node["slug"])
            for child in node["children"]:
                self.assertEqual(child["parent_id"], node["id"])

    def test_get_category_has_its_path_and_children(self):
        """GET /v1/categories/{id}: the category, its path from the root
        (ending with itself) and its children."""
        electronics = next(n for n in category_tree(self.server) if n["name"] == "Electronics")
        phones = next(c for c in electronics["children"] if c["name"] == "Phones")
        r = self.server.request("GET", f"/v1/categories/{phones['id']}")
        cat = self.assertJson(r, 200)
        self.assertEqual((cat["id"], cat["name"], cat["parent_id"]), (phones["id"], "Phones", electronics["id"]))
        self.assertEqual([p["id"] for p in cat["path"]], [electronics["id"], phones["id"]])
        self.assertEqual([p["name"] for p in cat["path"]], ["Electronics", "Phones"])
        root = self.assertJson(self.server.request("GET", f"/v1/categories/{electronics['id']}"), 200)
        self.assertIn(phones["id"], [c["id"] for c in root["children"]])
        self.assertEqual([p["id"] for p in root["path"]], [electronics["id"]])

    def test_admins_edit_the_category_tree(self):
        """Admins create (slug made or given, unique), rename, reorder and move
        categories (parent_id null makes a root); a move under a descendant is
        409 category-cycle; delete is 204 for an unused leaf and 409
        category-in-use with children or listings. Listings show renames."""
        slug = "bb-" + secrets.token_hex(4)
        root = self.new_category("BB Root", slug=slug, position=3)
        self.assertEqual((root["slug"], root["position"], root["parent_id"]), (slug, 3, None))
        self.assertIn(root["id"], [n["id"] for n in category_tree(self.server)])
        made = self.new_category("Auto Slug " + secrets.token_hex(2))
        self.assertRegex(made["slug"], r"^[a-z0-9-]{1,60}$")
        child = self.new_category("BB Child", parent_id=root["id"])
        grandchild = self.new_category("BB Grandchild", parent_id=child["id"])
        self.assertEqual(child["parent_id"], root["id"])
        r = self.server.request("POST", "/v1/categories", {"name": "Copy", "slug": slug}, headers=self.admin.auth())
        self.assertProblem(r, 409, "slug-taken")
        # A listing in the grandchild shows renames of its ancestors.
        listing = self.create(category_id=grandchild["id"])
        r = self.server.request("PATCH", f"/v1/categories/{child['id']}", {"name": "BB Child Renamed"},
                                headers=self.admin.auth())
        self.assertEqual(self.assertJson(r, 200)["name"], "BB Child Renamed")
        self.assertEqual([p["name"] for p in self.owner_view(listing["id"])["category_path"]],
                         ["BB Root", "BB Child Renamed", "BB Grandchild"])
        # Cycles are refused and change nothing.
        for target in (grandchild["id"], child["id"]):
            with self.subTest(parent=target):
                r = self.server.request("PATCH", f"/v1/categories/{child['id']}", {"parent_id": target},
                                        headers=self.admin.auth())
                if target == child["id"]:
                    self.assertIn(r.status, (400, 409), r)
                else:
                    self.assertProblem(r, 409, "category-cycle")
        r = self.server.request("PATCH", f"/v1/categories/{root['id']}", {"parent_id": grandchild["id"]},
                                headers=self.admin.auth())
        self.assertProblem(r, 409, "category-cycle")
        self.assertEqual(self.server.request("GET", f"/v1/categories/{child['id']}").body["parent_id"], root["id"])
        # Move the child to the top level with parent_id null.
        r = self.server.request("PATCH", f"/v1/categories/{child['id']}", {"parent_id": None},
                                headers=self.admin.auth())
        self.assertIsNone(self.assertJson(r, 200)["parent_id"])
        self.assertEqual([p["id"] for p in self.server.request("GET", f"/v1/categories/{grandchild['id']}")
                          .body["path"]], [child["id"], grandchild["id"]])
        self.assertEqual([p["id"] for p in self.owner_view(listing["id"])["category_path"]],
                         [child["id"], grandchild["id"]])
        # Deleting: in use with children or with a listing; free otherwise.
        self.assertProblem(self.server.request("DELETE", f"/v1/categories/{child['id']}", headers=self.admin.auth()),
                           409, "category-in-use")
        self.assertProblem(self.server.request("DELETE", f"/v1/categories/{grandchild['id']}",
                                               headers=self.admin.auth()), 409, "category-in-use")
        r = self.server.request("DELETE", f"/v1/categories/{made['id']}", headers=self.admin.auth())
        self.assertEqual(r.status, 204, r)
        self.assertProblem(self.server.request("GET", f"/v1/categories/{made['id']}"), 404, "category-not-found")
        self.assertNotIn(made["id"], [n["id"] for n, _ in walk_categories(category_tree(self.server))])
        self.assertProblem(self.server.request("DELETE", f"/v1/categories/{made['id']}", headers=self.admin.auth()),
                           404, "category-not-found")

    def test_category_writes_are_for_admins(self):
        """Category writes: no token 401, buyer or seller 403; nothing is
        written."""
        before = category_tree(self.server)
        some = before[0]
        for account in (None, self.buyer, self.seller):
            headers = account.auth() if account else {}
            status = 401 if account is None else 403
            with self.subTest(who=account.email if account else "anonymous"):
                self.assertProblem(self.server.request("POST", "/v1/categories", {"name": "Sneaky"}, headers=headers),
                                   status)
                self.assertProblem(self.server.request("PATCH", f"/v1/categories/{some['id']}", {"name": "Sneaky"},
                                                       headers=headers), status)
                self.assertProblem(self.server.request("DELETE", f"/v1/categories/{some['id']}", headers=headers),
                                   status)
        after = category_tree(self.server)
        self.assertEqual([n["name"] for n, _ in walk_categories(after) if n["id"] == some["id"]], [some["name"]])
        self.assertNotIn("Sneaky", [n["name"] for n, _ in walk_categories(after)])

    # -- unknown ids ---------------------------------------------------------------------------

    def test_unknown_ids_are_404(self):
        """Unknown or malformed listing and category ids are 404 with the
        listing-not-found / category-not-found type, for every method."""
        for lid in (MISSING_PRODUCT, "nonsense", "prd_", "usr_" + "0" * 26, "prd_" + "z" * 200):
            with self.subTest(listing=lid):
                self.assertProblem(self.get(lid), 404, "listing-not-found")
                self.assertProblem(self.get(lid, self.admin), 404, "listing-not-found")
                self.assertProblem(self.patch(lid, {"title": "x" * 5}, 1), 404, "listing-not-found")
                self.assertProblem(self.delete(lid), 404, "listing-not-found")
                for verb, body in (("publish", None), ("unpublish", None), ("inventory", {"delta": 1})):
                    self.assertProblem(self.action(lid, verb, body=body), 404, "listing-not-found")
        for cid in (MISSING_CATEGORY, "nonsense", "cat_"):
            with self.subTest(category=cid):
                self.assertProblem(self.server.request("GET", f"/v1/categories/{cid}"), 404, "category-not-found")
                self.assertProblem(self.server.request("PATCH", f"/v1/categories/{cid}", {"name": "X"},
                                                       headers=self.admin.auth()), 404, "category-not-found")
                self.assertProblem(self.server.request("DELETE", f"/v1/categories/{cid}", headers=self.admin.auth()),
                                   404, "category-not-found")

    def test_listings_survive_a_restart(self):
        """Listings, their status, stock and version are durable across a
        clean restart."""
        server = Server("--login-max-failures", "1000", database=self.database)
        self.addCleanup(server.stop)
        seller = server.new_seller()
        category = leaf_categories(server)[0]
        listing = create_listing(server, seller, category["id"], publish=True, quantity=4)
        self.assertEqual(server.request("POST", f"/v1/products/{listing['id']}/inventory", {"delta": -1},
                                        headers=seller.auth()).status, 200)
        self.assertEqual(server.restart(), 0)
        seller.tokens = server.login(seller.email).body  # the issuer (port) changed
        again = server.request("GET", f"/v1/products/{listing['id']}").body
        self.assertEqual((again["status"], again["quantity"], again["version"], again["title"]),
                         ("active", 3, listing["version"] + 1, listing["title"]))

    # -- bad input: listings ------------------------------------------------------------------

    def assertCreateRefused(self, seller, body, field=None, status=400, type_suffix="validation"):
        before = [x["id"] for x in self.my_listings(seller)]
        r = self.server.request("POST", "/v1/products", body, headers=seller.auth())
        if field is not None:
            self.assertFieldError(r, field, status)
        else:
            self.assertProblem(r, status, type_suffix)
        self.assertEqual([x["id"] for x in self.my_listings(seller)], before, "a refused create wrote a listing")
        return r

    def test_create_refuses_each_invalid_field_and_writes_nothing(self):
        """Every invalid field is a validation problem naming it; nothing is
        written."""
        seller = self.server.new_seller()
        cat = self.category["id"]
        eur = lambda amount: {"amount": amount, "currency": "EUR"}  # noqa: E731
        ship = lambda **o: [{"method": "standard", "price": eur(500), "min_days": 2, "max_days": 5, **o}]  # noqa
        cases = [
            ("title", {"title": None}), ("title", {"title": "ab"}), ("title", {"title": "x" * 141}),
            ("title", {"title": "é" * 141}), ("title", {"title": 42}), ("title", {"title": "bell\u0007 ring"}),
            ("description", {"description": "d" * 5001}), ("description", {"description": ["x"]}),
            ("price", {"price": None}), ("price", {"price": 1999}), ("price", {"price": {"amount": 1999}}),
            ("price", {"price": {"currency": "EUR"}}),
            ("price.amount", {"price": eur(19.99)}), ("price.amount", {"price": eur(-1)}),
            ("price.amount", {"price": eur(10_000_000_001)}), ("price.amount", {"price": eur("1999")}),
            ("price.amount", {"price": eur(1e30)}),
            ("price.currency", {"price": {"amount": 1, "currency": "XYZ"}}),
            ("price.currency", {"price": {"amount": 1, "currency": "eur"}}),
            ("price.currency", {"price": {"amount": 1, "currency": "EURO"}}),
            ("price.currency", {"price": {"amount": 1, "currency": ""}}),
            ("quantity", {"quantity": -1}), ("quantity", {"quantity": 1_000_001}), ("quantity", {"quantity": 1.5}),
            ("quantity", {"quantity": "3"}),
            ("category_id", {"category_id": None}), ("category_id", {"category_id": MISSING_CATEGORY}),
            ("category_id", {"category_id": "nonsense"}), ("category_id", {"category_id": 7}),
            ("condition", {"condition": None}), ("condition", {"condition": "mint"}),
            ("condition", {"condition": "NEW"}),
            ("attributes", {"attributes": {f"k{i}": "v" for i in range(31)}}),
            ("attributes", {"attributes": {"": "v"}}), ("attributes", {"attributes": {"k" * 41: "v"}}),
            ("attributes", {"attributes": {"brand": ""}}), ("attributes", {"attributes": {"brand": "v" * 201}}),
            ("attributes", {"attributes": {"brand": 5}}), ("attributes", {"attributes": ["brand"]}),
            ("images", {"images": [f"https://img.example.com/{i}.jpg" for i in range(11)]}),
            ("images", {"images": ["http://img.example.com/1.jpg"]}), ("images", {"images": ["not a url"]}),
            ("images", {"images": ["javascript:alert(1)"]}),
            ("images", {"images": ["https://img.example.com/" + "a" * 2030]}),
            ("images", {"images": "https://img.example.com/1.jpg"}),
            ("shipping", {"shipping": ship() * 6}), ("shipping", {"shipping": ship(min_days=6, max_days=5)}),
            ("shipping", {"shipping": ship(max_days=366)}), ("shipping", {"shipping": ship(min_days=-1)}),
            ("shipping", {"shipping": ship(method="")}), ("shipping", {"shipping": ship(method="m" * 41)}),
            ("shipping", {"shipping": ship(price=eur(-5))}),
            ("shipping", {"shipping": ship(price={"amount": 5, "currency": "XYZ"})}),
            ("shipping", {"shipping": [{"method": "standard"}]}),
        ]
        for field, override in cases:
            with self.subTest(field=field, override=json.dumps(override)[:80]):
                self.assertCreateRefused(seller, listing_body(cat, **override), field)
        # Every problem of the body's shape is reported at once.
        body = listing_body(cat, title=42, quantity="3", description=["x"])
        r = self.assertCreateRefused(seller, body, "title")
        for field in ("quantity", "description"):
            self.assertFieldError(r, field)

    def test_create_accepts_values_at_the_limits(self):
        """The bounds themselves are accepted: 3 and 140 code points of title,
        5000 of description, price 0 and 10,000,000,000, quantity 1,000,000,
        30 attributes of 40/200 code points, 10 images of 2048 characters,
        5 shipping options of 0 and 365 days."""
        cat = self.category["id"]
        base = "https://img.example.com/"
        long_urls = [base + str(i) + "a" * (2048 - len(base) - 1) for i in range(10)]
        for override in ({"title": "abc"}, {"title": "é" * 140}, {"title": "🙂" * 140},
                         {"description": "d" * 5000}, {"price": {"amount": 0, "currency": "JPY"}},
                         {"price": {"amount": 10_000_000_000, "currency": "EUR"}}, {"quantity": 1_000_000},
                         {"quantity": 0},
                         {"attributes": {f"{i:02d}" + "k" * 38: "é" * 200 for i in range(30)}},
                         {"images": long_urls},
                         {"shipping": [{"method": f"{d:03d}" + "m" * 37, "price": {"amount": 0, "currency": "EUR"},
                                        "min_days": d, "max_days": 365} for d in (0, 1, 2, 3, 365)]}):
            with self.subTest(override=json.dumps(override)[:60]):
                r = self.server.request("POST", "/v1/products", listing_body(cat, **override),
                                        headers=self.seller.auth())
                listing = self.assertJson(r, 201)
                for key, value in override.items():
                    self.assertEqual(listing[key], value, key)

    def test_create_refuses_unknown_fields_so_no_mass_assignment(self):
        """Fields the request does not list (status, seller_id, version, id,
        reserved, published_at…) are refused by name; nothing is written."""
        seller = self.server.new_seller()
        for extra in ({"status": "active"}, {"seller_id": self.other_seller.id}, {"version": 7},
                      {"id": MISSING_PRODUCT}, {"reserved": 5}, {"published_at": "2025-01-01T00:00:00.000Z"},
                      {"in_stock": True}, {"colour": "red"}):
            with self.subTest(extra=extra):
                self.assertCreateRefused(seller, {**listing_body(self.category["id"]), **extra}, next(iter(extra)))
        r = self.server.request("POST", "/v1/products",
                                listing_body(self.category["id"], price={"amount": 1, "currency": "EUR", "tax": 1}),
                                headers=seller.auth())
        self.assertFieldError(r, "price")
        self.assertEqual(self.my_listings(seller), [])

    def test_create_refuses_malformed_bodies(self):
        """Malformed JSON, invalid UTF-8, non-object bodies and an empty body
        are 400 (malformed-json for the first two), a wrong Content-Type 415;
        nothing is written."""
        seller = self.server.new_seller()
        good = json.dumps(listing_body(self.category["id"]))
        for raw in (good[:-1], good.replace('"', "'"), good[:-1] + ",}", good + " {}", "{title: 1}"):
            with self.subTest(raw=raw[-20:]):
                r = self.server.request("POST", "/v1/products", raw=raw, headers=seller.auth())
                self.assertProblem(r, 400, "malformed-json")
        prefix = good.encode().replace(b'"title": "', b'"title": "Bad ', 1)
        for bad in (b"\xff\xfe", b"caf\xc3", b"\xc0\xaf", b"\xed\xa0\x80"):
            with self.subTest(utf8=bad):
                raw = prefix.replace(b'"title": "Bad ', b'"title": "Bad ' + bad, 1)
                r = self.server.request("POST", "/v1/products", raw=raw, headers=seller.auth())
                self.assertProblem(r, 400, "malformed-json")
        for raw in ("[]", '"text"', "42", "null", ""):
            with self.subTest(raw=raw):
                self.assertProblem(self.server.request("POST", "/v1/products", raw=raw, headers=seller.auth()), 400)
        r = self.server.request("POST", "/v1/products", raw=good,
                                headers={**seller.auth(), "Content-Type": "text/plain"})
        self.assertProblem(r, 415)
        self.assertEqual(self.my_listings(seller), [])

    def test_patch_refuses_invalid_fields_and_keeps_the_version(self):
        """A refused PATCH (bad field, unknown field, malformed body) changes
        nothing, the version included."""
        listing = self.create()
        before = self.owner_view(listing["id"])
        v = before["version"]
        for field, body in (("title", {"title": "ab"}), ("price.amount", {"price": {"amount": -1, "currency": "EUR"}}),
                            ("price.currency", {"price": {"amount": 1, "currency": "XYZ"}}),
                            ("category_id", {"category_id": MISSING_CATEGORY}), ("condition", {"condition": "mint"}),
                            ("quantity", {"quantity": -1}), ("images", {"images": ["http://x.example/1.jpg"]}),
                            ("status", {"status": "active"}), ("status", {"title": "Valid title", "status": "active"}),
                            ("seller_id", {"seller_id": self.other_seller.id}), ("version", {"version": 99})):
            with self.subTest(body=body):
                self.assertFieldError(self.patch(listing["id"], body, v), field)
        for raw in ("{", "[]", b'{"title": "\xff"}'):
            with self.subTest(raw=raw):
                r = self.server.request("PATCH", f"/v1/products/{listing['id']}", raw=raw,
                                        headers={**self.seller.auth(), "If-Match": etag(v)})
                self.assertProblem(r, 400)
        self.assertEqual(self.owner_view(listing["id"]), before)

    def test_inventory_refuses_bad_bodies(self):
        """Inventory needs exactly one of delta (non-zero, |n| <= 1,000,000)
        and quantity (0..1,000,000), integers; reason <= 200; a result over
        1,000,000 is 400. Nothing changes."""
        listing = self.create(quantity=5)
        before = self.owner_view(listing["id"])
        for body in ({}, {"reason": "nothing"}, {"delta": 1, "quantity": 2}, {"delta": 0}, {"delta": 1_000_001},
                     {"delta": -1_000_001}, {"delta": 1.5}, {"delta": "1"}, {"quantity": -1},
                     {"quantity": 1_000_001}, {"quantity": 2.5}, {"delta": 1, "reason": "r" * 201},
                     {"delta": 999_999}, {"delta": 1, "note": "x"}):
            with self.subTest(body=body):
                self.assertProblem(self.action(listing["id"], "inventory", body=body), 400, "validation")
        self.assertEqual(self.owner_view(listing["id"]), before)

    def test_browse_refuses_bad_query_parameters(self):
        """Unknown parameters and bad values are 400 validation naming the
        parameter: sort other than newest/price_asc/price_desc, limit outside
        1..100, negative or non-integer prices, in_stock other than
        true/false."""
        for params, field in (({"sort": "rating"}, "sort"), ({"sort": "foo"}, "sort"), ({"sort": ""}, "sort"),
                              ({"sort": "relevance"}, "sort"),
                              ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "abc"}, "limit"),
                              ({"limit": "-1"}, "limit"), ({"limit": "1.5"}, "limit"),
                              ({"min_price": "-1"}, "min_price"), ({"min_price": "abc"}, "min_price"),
                              ({"max_price": "1.5"}, "max_price"), ({"in_stock": "maybe"}, "in_stock"),
                              ({"min_price": "500", "max_price": "100"}, "max_price"),
                              ({"colour": "red"}, "colour"), ({"page": "2"}, "page")):
            with self.subTest(params=params):
                self.assertFieldError(self.browse(**params), field)
        for ok in ({"sort": "newest"}, {"sort": "price_asc"}, {"sort": "price_desc"}, {"limit": "1"},
                   {"limit": "100"}, {"in_stock": "true"}, {"in_stock": "false"}):
            with self.subTest(ok=ok):
                self.assertEqual(self.browse(**ok).status, 200)

    def test_category_writes_refuse_bad_input(self):
        """Category names of 1..80, slugs [a-z0-9-]{1,60}, a known parent and
        no unknown fields; nothing is written."""
        before = {n["id"] for n, _ in walk_categories(category_tree(self.server))}
        for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "n" * 81}, "name"), ({"name": 5}, "name"),
                            ({"name": "Ok", "slug": "Bad Slug"}, "slug"), ({"name": "Ok", "slug": "s" * 61}, "slug"),
                            ({"name": "Ok", "slug": "ünï"}, "slug"),
                            ({"name": "Ok", "position": "first"}, "position"),
                            ({"name": "Ok", "id": MISSING_CATEGORY}, "id")):
            with self.subTest(body=body):
                self.assertFieldError(self.server.request("POST", "/v1/categories", body, headers=self.admin.auth()),
                                      field)
        r = self.server.request("POST", "/v1/categories", {"name": "Orphan", "parent_id": MISSING_CATEGORY},
                                headers=self.admin.auth())
        self.assertIn(r.status, (400, 404), r)
        if r.status == 404:
            self.assertProblem(r, 404, "category-not-found")
        else:
            self.assertFieldError(r, "parent_id")
        self.assertEqual({n["id"] for n, _ in walk_categories(category_tree(self.server))}, before)
        some = category_tree(self.server)[0]
        r = self.server.request("PATCH", f"/v1/categories/{some['id']}", {"name": ""}, headers=self.admin.auth())
        self.assertFieldError(r, "name")
        self.assertEqual(self.server.request("GET", f"/v1/categories/{some['id']}").body["name"], some["name"])


class CatalogOnSqlite(CatalogFlows, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class CatalogOnPostgres(CatalogFlows, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
