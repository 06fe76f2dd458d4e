"""Search against the real server, on SQLite and on PostgreSQL.

SearchFlows holds the tests; SearchOnSqlite and SearchOnPostgres run them on
each store. Listings are made through the catalog API, so these tests check
the whole path: catalog write -> outbox -> search index -> GET /v1/search.

Every test uses words of its own (`unique_word()`, made-up words no other
test uses), so tests sharing the class-wide server do not see each other's
listings. The contract is that a change is searchable within one second of
the catalog answering it: `await_search` polls, and it passes only if a
request *sent* no later than VISIBILITY_S after the change saw it. After a
crash or a reindex the index is given CATCH_UP_S to catch up instead.

Where the contract was silent these tests assume: price facet buckets do not
overlap (so their counts add up to `total`); the category facet counts at
least each listing's own category; a suggestion's `text` is the whole word
as it appears in the title (lower-cased); Xapian databases are folders
holding an `iamglass` file (the reindex test deletes them first, when it
finds them, so that it proves a rebuild).
"""

import shutil
import signal
import threading
import time
import unittest
from pathlib import Path

from tests.http.agora import (ProblemAssertions, Server, collect_pages, create_listing, leaf_categories, pg_url,
                              run_agora, unique_word, with_query)

PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
VISIBILITY_S = 1.0    # the contract: searchable within 1 s of the API answering
CATCH_UP_S = 30.0     # after kill -9 or a reindex: generous, the point is completeness
CRASH_LISTINGS = 300


def ids(body):
    return {x["id"] for x in body["data"]}


class SearchFlows(ProblemAssertions):
    database = None  # "sqlite" or "postgres", set by the concrete classes

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--login-max-failures", "1000", database=cls.database)
        cls.seller = cls.server.new_seller(display_name="Sid Seller")
        leaves = leaf_categories(cls.server)
        cls.category, cls.category2 = leaves[0], leaves[1]

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    # -- helpers -------------------------------------------------------------------

    def create(self, title, publish=True, seller=None, server=None, **override):
        server = server or self.server
        category = override.pop("category_id", self.category["id"])
        return create_listing(server, seller or self.seller, category, publish=publish, title=title, **override)

    def search(self, server=None, **params):
        return (server or self.server).request("GET", with_query("/v1/search", **params))

    def act(self, listing, verb, body=None):
        r = self.server.request("POST", f"/v1/products/{listing['id']}/{verb}", body, headers=self.seller.auth())
        self.assertEqual(r.status, 200, r)
        return r.body

    def await_search(self, predicate, what, since, bound=VISIBILITY_S, server=None, **params):
        """Polls GET /v1/search?params until `predicate(body)`; fails unless a
        request sent at most `bound` seconds after `since` saw it. Returns
        (body, seconds from `since` to sending the request that saw it)."""
        while True:
            sent = time.monotonic()
            r = self.search(server, **params)
            self.assertEqual(r.status, 200, r)
            if predicate(r.body):
                return r.body, sent - since
            if sent - since > bound:
                self.fail(f"{what}: not seen within {bound}s (last answer: {r.body})")
            time.sleep(0.02)

    def assertHit(self, hit, listing):
        self.assertEqual(hit["id"], listing["id"])
        self.assertEqual(hit["title"], listing["title"])
        self.assertEqual(hit["price"], listing["price"])
        self.assertNotIn("description", hit)
        self.assertIsInstance(hit.get("snippet"), str)
        self.assertNotIn("reserved", hit)

    # -- visibility --------------------------------------------------------------------

    def test_a_published_listing_is_findable_within_a_second(self):
        """Proves: publish -> searchable by a word of its title within 1 s; the
        hit is the listing without description but with a snippet; the
        envelope has total, match, spelling_suggestion and facets ({})."""
        word = unique_word()
        listing = self.create(f"Vintage {word} lamp", publish=False,
                              description=f"A brass lamp; the {word} model from 1970.")
        r = self.search(q=word)
        self.assertEqual(self.assertJson(r, 200)["data"], [], "a draft was findable")
        listing = self.act(listing, "publish")
        body, after = self.await_search(lambda b: listing["id"] in ids(b), "the published listing", time.monotonic(),
                                        q=word)
        self.assertEqual(len(body["data"]), 1)
        self.assertHit(body["data"][0], listing)
        self.assertEqual(body["total"], 1)
        self.assertEqual(body["match"], "all")
        self.assertIsNone(body["spelling_suggestion"])
        self.assertEqual(body["facets"], {})
        self.assertIsNone(body["next_cursor"])
        self.assertLessEqual(after, VISIBILITY_S)

    def test_drafts_are_never_findable(self):
        """Proves: a draft is not indexed for search. A listing published
        after the draft was created is the barrier: once it is findable, the
        draft would have been too."""
        word = unique_word()
        draft = self.create(f"{word} draft only", publish=False)
        sentinel = self.create(f"{word} published", publish=True)
        body, _ = self.await_search(lambda b: sentinel["id"] in ids(b), "the published sentinel", time.monotonic(),
                                    q=word)
        self.assertEqual(ids(body), {sentinel["id"]})
        self.assertNotIn(draft["id"], ids(body))
        self.assertEqual(body["total"], 1)

    def test_unpublished_and_archived_listings_disappear(self):
        """Proves: unpublish removes a listing from search within 1 s,
        publishing again brings it back, and archiving removes it for good."""
        word = unique_word()
        listing = self.create(f"Folding {word} chair")
        self.await_search(lambda b: listing["id"] in ids(b), "the published listing", time.monotonic(), q=word)
        self.act(listing, "unpublish")
        self.await_search(lambda b: not b["data"] and b["total"] == 0, "the unpublished listing gone",
                          time.monotonic(), q=word)
        self.act(listing, "publish")
        self.await_search(lambda b: listing["id"] in ids(b), "the republished listing", time.monotonic(), q=word)
        r = self.server.request("DELETE", f"/v1/products/{listing['id']}", headers=self.seller.auth())
        self.assertEqual(r.status, 204, r)
        self.await_search(lambda b: not b["data"], "the archived listing gone", time.monotonic(), q=word)

    def test_edits_are_reindexed(self):
        """Proves: a PATCH of the title is searchable by the new word within
        1 s and no longer by the old one; a price change shows in the hit."""
        old, new = unique_word(), unique_word()
        listing = self.create(f"Desk {old}")
        self.await_search(lambda b: listing["id"] in ids(b), "the listing", time.monotonic(), q=old)
        r = self.server.request("PATCH", f"/v1/products/{listing['id']}",
                                {"title": f"Desk {new}", "price": {"amount": 4321, "currency": "EUR"}},
                                headers={**self.seller.auth(), "If-Match": f'"v{listing["version"]}"'})
        self.assertEqual(r.status, 200, r)
        start = time.monotonic()
        body, _ = self.await_search(lambda b: listing["id"] in ids(b), "the new title", start, q=new)
        self.assertEqual(body["data"][0]["price"]["amount"], 4321)
        self.await_search(lambda b: not b["data"], "the old title gone", start, q=old)

    def test_stock_to_zero_shows_in_the_in_stock_filter(self):
        """Proves: an inventory change reaches search within 1 s: with stock
        0 the listing matches in_stock=false and not in_stock=true."""
        word = unique_word()
        listing = self.create(f"{word} kettle", quantity=2)
        self.await_search(lambda b: listing["id"] in ids(b), "the listing in stock", time.monotonic(), q=word,
                          in_stock="true")
        self.assertEqual(self.assertJson(self.search(q=word, in_stock="false"), 200)["data"], [])
        self.act(listing, "inventory", {"quantity": 0})
        start = time.monotonic()
        body, _ = self.await_search(lambda b: listing["id"] in ids(b), "the listing out of stock", start, q=word,
                                    in_stock="false")
        self.assertIs(body["data"][0]["in_stock"], False)
        self.await_search(lambda b: not b["data"], "the listing gone from in_stock=true", start, q=word,
                          in_stock="true")

    # -- matching -------------------------------------------------------------------------

    def test_every_word_is_required_and_falls_back_to_any_word(self):
        """Proves: two words match only listings with both (match: all); when
        none has both, listings with either are returned with match: any."""
        w1, w2 = unique_word(), unique_word()
        x = self.create(f"Blue {w1} teapot")
        y = self.create(f"Green {w2} teacup")
        start = time.monotonic()
        self.await_search(lambda b: x["id"] in ids(b), "the first listing", start, q=w1)
        self.await_search(lambda b: y["id"] in ids(b), "the second listing", start, q=w2)
        body = self.assertJson(self.search(q=f"{w1} {w2}"), 200)
        self.assertEqual(body["match"], "any")
        self.assertEqual(ids(body), {x["id"], y["id"]})
        self.assertEqual(self.assertJson(self.search(q=w1), 200)["match"], "all")
        z = self.create(f"Tea set with {w1} and {w2}")
        body, _ = self.await_search(lambda b: b["match"] == "all", "the listing with both words", time.monotonic(),
                                    q=f"{w1} {w2}")
        self.assertEqual(ids(body), {z["id"]})
        self.assertEqual(body["total"], 1)

    def test_a_misspelled_word_gets_a_spelling_suggestion(self):
        """Proves: searching a one-letter misspelling of a title word finds
        nothing and suggests the word."""
        word = unique_word()
        listing = self.create(f"{word} bicycle bell")
        self.await_search(lambda b: listing["id"] in ids(b), "the listing", time.monotonic(), q=word)
        i = len(word) // 2
        typo = word[:i] + ("x" if word[i] != "x" else "w") + word[i + 1:]
        body, _ = self.await_search(lambda b: b["spelling_suggestion"] is not None, "a spelling suggestion",
                                    time.monotonic(), q=typo)
        self.assertEqual(body["spelling_suggestion"].lower(), word)
        self.assertEqual(body["data"], [])

    def test_suggest_completes_a_unique_prefix(self):
        """Proves: /v1/search/suggest completes a prefix to the title word it
        starts, with a count; every completion starts with the prefix."""
        word = unique_word()
        listing = self.create(f"{word} garden hose")
        self.await_search(lambda b: listing["id"] in ids(b), "the listing", time.monotonic(), q=word)
        prefix = word[:7]
        r = self.server.request("GET", with_query("/v1/search/suggest", q=prefix))
        body = self.assertJson(r, 200)
        self.assertIsNone(body["next_cursor"])
        texts = [s["text"].lower() for s in body["data"]]
        self.assertIn(word, texts)
        for s in body["data"]:
            self.assertTrue(s["text"].lower().startswith(prefix), s)
            self.assertIsInstance(s["count"], int)
            self.assertGreaterEqual(s["count"], 1)
        r = self.server.request("GET", with_query("/v1/search/suggest", q=word[:3], limit=1))
        self.assertLessEqual(len(self.assertJson(r, 200)["data"]), 1)

    # -- facets, filters, sort and pages ----------------------------------------------------

    def test_facets_count_what_was_created(self):
        """Proves: facets=all counts the matches by category, condition and
        price; facets=condition returns that facet only."""
        word = unique_word()
        made = [self.create(f"{word} one", condition="new", price={"amount": 1000, "currency": "EUR"}),
                self.create(f"{word} two", condition="new", price={"amount": 5000, "currency": "EUR"}),
                self.create(f"{word} three", condition="good", price={"amount": 90000, "currency": "EUR"},
                            category_id=self.category2["id"])]
        body, _ = self.await_search(lambda b: ids(b) == {m["id"] for m in made}, "the three listings",
                                    time.monotonic(), q=word, facets="all")
        self.assertEqual(body["total"], 3)
        facets = body["facets"]
        self.assertEqual(set(facets), {"category", "condition", "price"})
        by_category = {c["id"]: c["count"] for c in facets["category"]}
        self.assertEqual(by_category.get(self.category["id"]), 2, facets["category"])
        self.assertEqual(by_category.get(self.category2["id"]), 1, facets["category"])
        for c in facets["category"]:
            self.assertTrue(c["name"])
        self.assertEqual({c["value"]: c["count"] for c in facets["condition"] if c["count"]}, {"new": 2, "good": 1})
        self.assertEqual(sum(p["count"] for p in facets["price"]), 3, facets["price"])
        for bucket in facets["price"]:
            self.assertIsInstance(bucket["min"], int)
            self.assertTrue(bucket["max"] is None or bucket["max"] >= bucket["min"], bucket)
        only = self.assertJson(self.search(q=word, facets="condition"), 200)
        self.assertEqual(set(only["facets"]), {"condition"})
        two = self.assertJson(self.search(q=word, facets="category,price"), 200)
        self.assertEqual(set(two["facets"]), {"category", "price"})

    def test_filters_and_sorts_apply_to_search(self):
        """Proves: the browse filters (price, condition, currency, category)
        narrow search results and price_asc/price_desc order them."""
        word = unique_word()
        a = self.create(f"{word} alpha", price={"amount": 300, "currency": "EUR"}, condition="new")
        b = self.create(f"{word} beta", price={"amount": 100, "currency": "EUR"}, condition="fair")
        c = self.create(f"{word} gamma", price={"amount": 200, "currency": "USD"}, condition="new",
                        category_id=self.category2["id"])
        self.await_search(lambda body: len(body["data"]) == 3, "the three listings", time.monotonic(), q=word)

        def found(**params):
            return ids(self.assertJson(self.search(q=word, **params), 200))

        self.assertEqual(found(condition="new"), {a["id"], c["id"]})
        self.assertEqual(found(min_price=150, max_price=300), {a["id"], c["id"]})
        self.assertEqual(found(currency="USD"), {c["id"]})
        self.assertEqual(found(category=self.category2["id"]), {c["id"]})
        self.assertEqual(found(seller=self.seller.id), {a["id"], b["id"], c["id"]})
        asc = [x["id"] for x in self.assertJson(self.search(q=word, sort="price_asc"), 200)["data"]]
        self.assertEqual(asc, [b["id"], c["id"], a["id"]])
        desc = [x["id"] for x in self.assertJson(self.search(q=word, sort="price_desc"), 200)["data"]]
        self.assertEqual(desc, [a["id"], c["id"], b["id"]])
        self.assertEqual(self.search(q=word, sort="newest").status, 200)
        self.assertEqual(self.search(q=word, sort="relevance").status, 200)

    def test_search_pages_without_duplicates_or_gaps(self):
        """Proves: following next_cursor with limit=2 returns every match
        once; total is the number of all matches on every page."""
        word = unique_word()
        made = {self.create(f"{word} item {i}", price={"amount": 100 * (i % 2), "currency": "EUR"})["id"]
                for i in range(5)}
        self.await_search(lambda b: b["total"] == 5, "the five listings", time.monotonic(), q=word)
        for sort in ("relevance", "newest", "price_asc"):
            with self.subTest(sort=sort):
                items, pages = collect_pages(self.server, "/v1/search", q=word, sort=sort, limit=2)
                got = [x["id"] for x in items]
                self.assertEqual(len(got), len(set(got)), "a listing came twice")
                self.assertEqual(set(got), made)
                self.assertEqual(pages, 3)

    # -- bad input ---------------------------------------------------------------------------

    def test_query_syntax_and_oversized_queries_are_refused(self):
        """Proves: q is plain words only: Xapian operators are a validation
        problem for field q, as is q longer than 200 code points; 10 KB of
        text is some 4xx problem+json."""
        for q in ("title:foo", "foo AND bar", '"exact phrase"', "wild*", "(a OR b)", "-foo"):
            with self.subTest(q=q):
                self.assertProblem(self.search(q=q), 400, "validation", fields=["q"])
        self.assertProblem(self.search(q="é" * 201), 400, "validation", fields=["q"])
        self.assertEqual(self.search(q="é" * 200).status, 200)
        r = self.search(q="lamp " * 2048)
        self.assertGreaterEqual(r.status, 400, r)
        self.assertLess(r.status, 500, r)
        self.assertEqual((r.headers.get("Content-Type") or "").split(";")[0], "application/problem+json")
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_bad_parameters_are_refused(self):
        """Proves: sort, limit, facets and unknown parameters are checked on
        search and suggest (400 validation naming the parameter)."""
        for params, field in (({"sort": "rating"}, "sort"), ({"sort": "foo"}, "sort"), ({"limit": "0"}, "limit"),
                              ({"limit": "101"}, "limit"), ({"limit": "abc"}, "limit"), ({"facets": "foo"}, "facets"),
                              ({"facets": "category,colour"}, "facets"), ({"min_price": "-5"}, "min_price"),
                              ({"in_stock": "yes please"}, "in_stock"), ({"colour": "red"}, "colour")):
            with self.subTest(params=params):
                self.assertProblem(self.search(q="lamp", **params), 400, "validation", fields=[field])
        for params, field in (({"q": "lam", "limit": "0"}, "limit"), ({"q": "lam", "limit": "21"}, "limit"),
                              ({"q": "lam", "colour": "red"}, "colour")):
            with self.subTest(suggest=params):
                r = self.server.request("GET", with_query("/v1/search/suggest", **params))
                self.assertProblem(r, 400, "validation", fields=[field])
        r = self.server.request("GET", with_query("/v1/search/suggest", q="lam", limit="20"))
        self.assertEqual(r.status, 200, r)

    def test_answers_carry_validators_and_revalidate_with_304(self):
        """Proves: search and suggest answers carry an ETag and a public
        Cache-Control; If-None-Match with that tag answers 304 without a
        body until the answer changes."""
        word = unique_word()
        self.create(f"{word} validator")
        self.await_search(lambda b: b["total"] == 1, "the listing", time.monotonic(), q=word)
        for path in (with_query("/v1/search", q=word), with_query("/v1/search/suggest", q=word[:4])):
            with self.subTest(path=path):
                r = self.server.request("GET", path)
                self.assertEqual(r.status, 200, r)
                tag = r.headers.get("ETag")
                self.assertTrue(tag, "no ETag")
                self.assertIn("public", r.headers.get("Cache-Control", ""))
                again = self.server.request("GET", path, headers={"If-None-Match": tag})
                self.assertEqual(again.status, 304, again)
                self.assertEqual(again.raw, b"")
                self.assertEqual(again.headers.get("ETag"), tag)
        before = self.server.request("GET", with_query("/v1/search", q=word)).headers.get("ETag")
        self.create(f"{word} second validator")
        self.await_search(lambda b: b["total"] == 2, "both listings", time.monotonic(), q=word)
        changed = self.server.request("GET", with_query("/v1/search", q=word), headers={"If-None-Match": before})
        self.assertEqual(changed.status, 200, changed)

    def test_tampered_cursors_are_refused(self):
        """Proves: a search cursor with a character changed, or used with
        another sort, is 400 invalid-cursor."""
        word = unique_word()
        for i in range(3):
            self.create(f"{word} cursor {i}")
        self.await_search(lambda b: b["total"] == 3, "three listings", time.monotonic(), q=word)
        cursor = self.assertJson(self.search(q=word, limit=1), 200)["next_cursor"]
        self.assertIsInstance(cursor, str)
        i = len(cursor) // 2
        flipped = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]
        self.assertProblem(self.search(q=word, limit=1, cursor=flipped), 400, "invalid-cursor")
        self.assertProblem(self.search(q=word, limit=1, cursor="nonsense"), 400, "invalid-cursor")
        self.assertProblem(self.search(q=word, limit=1, cursor=cursor, sort="price_desc"), 400, "invalid-cursor")
        self.assertEqual(self.search(q=word, limit=1, cursor=cursor).status, 200)

    # -- durability of the index ---------------------------------------------------------------

    def seed(self, server, seller, word, count, threads=4):
        """Creates `count` listings titled with `word` through the API (every
        10th stays a draft) as fast as a few keep-alive connections allow.
        Returns (active ids, draft ids)."""
        category = leaf_categories(server)[0]["id"]
        active, drafts, errors = set(), set(), []
        lock = threading.Lock()

        def work(indexes):
            conn = server.connection()
            try:
                for i in indexes:
                    publish = i % 10 != 0
                    listing = create_listing(server, seller, category, publish=publish, conn=conn,
                                             title=f"{word} seeded {i}", quantity=1)
                    with lock:
                        (active if publish else drafts).add(listing["id"])
            except Exception as e:  # noqa: BLE001 — reported below
                errors.append(e)
            finally:
                conn.close()

        workers = [threading.Thread(target=work, args=(range(t, count, threads),)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(300)
        if errors:
            raise errors[0]
        self.assertEqual(len(active) + len(drafts), count)
        return active, drafts

    def findable(self, server, word):
        items, _ = collect_pages(server, "/v1/search", q=word, limit=100)
        return {x["id"] for x in items}

    def await_all_findable(self, server, word, expected):
        start = time.monotonic()
        while True:
            got = self.findable(server, word)
            if got == expected:
                return time.monotonic() - start
            if time.monotonic() - start > CATCH_UP_S:
                self.fail(f"after {CATCH_UP_S}s search has {len(got & expected)} of {len(expected)} active listings "
                          f"(missing e.g. {sorted(expected - got)[:3]}, unexpected {sorted(got - expected)[:3]})")
            time.sleep(0.1)

    def test_every_acknowledged_listing_is_findable_after_kill_9(self):
        """Proves: the index loses nothing the catalog acknowledged. Seeds
        CRASH_LISTINGS listings as fast as possible, kills the server with
        SIGKILL right after the last answer (index updates still in flight),
        restarts on the same data (and database), and checks that search
        returns exactly the active ones (drafts never) and that the catalog
        kept every listing."""
        server = Server("--login-max-failures", "1000", database=self.database)
        self.addCleanup(server.stop)
        seller = server.new_seller()
        word = unique_word()
        active, drafts = self.seed(server, seller, word, CRASH_LISTINGS)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=20)
        server.restart()
        took = self.await_all_findable(server, word, active)
        items, _ = collect_pages(server, "/v1/products", seller=seller.id, limit=100)
        self.assertEqual({x["id"] for x in items}, active, "the catalog lost acknowledged listings")
        self.assertFalse(self.findable(server, word) & drafts)
        # And the restarted server indexes new changes within the bound again.
        seller.tokens = server.login(seller.email).body  # the port, so the issuer, changed
        fresh = create_listing(server, seller, leaf_categories(server)[0]["id"], publish=True,
                               title=f"{word} after restart")
        self.await_search(lambda b: fresh["id"] in ids(b), "a listing published after the restart",
                          time.monotonic(), server=server, q=f"{word} restart")
        self.assertLess(took, CATCH_UP_S)

    def test_reindex_rebuilds_the_index_from_the_catalog(self):
        """Proves: `agora search reindex --data-dir <dir>` (server stopped)
        exits 0 and rebuilds the index from the catalog: after a restart every
        active listing is findable and drafts and archived ones are not. The
        Xapian databases are deleted first when found, so nothing is left to
        reuse."""
        server = Server("--login-max-failures", "1000", database=self.database)
        self.addCleanup(server.stop)
        seller = server.new_seller()
        word = unique_word()
        active, drafts = self.seed(server, seller, word, 40, threads=2)
        archived = sorted(active)[:3]
        for lid in archived:
            self.assertEqual(server.request("DELETE", f"/v1/products/{lid}", headers=seller.auth()).status, 204)
        active -= set(archived)
        self.await_all_findable(server, word, active)
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(timeout=20), 0)
        glass = {p.parent for p in Path(server.data_dir).rglob("iamglass")}
        for db in glass:
            shutil.rmtree(db)
        cmd = ["search", "reindex", "--data-dir", str(server.data_dir)]
        if server.database_url:
            cmd += ["--database-url", server.database_url]
        proc = run_agora(*cmd, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        if glass:
            self.assertTrue(any(Path(server.data_dir).rglob("iamglass")), "reindex wrote no Xapian database")
        server.restart()
        self.await_all_findable(server, word, active)
        self.assertFalse(self.findable(server, word) & (drafts | set(archived)))


class SearchOnSqlite(SearchFlows, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class SearchOnPostgres(SearchFlows, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
