"""The sandbox payment gateway's tokenization, black box.

Card details go to `POST /sandbox/v1/tokens` (served by the same binary,
outside the /v1 API, the one route that accepts card numbers) and come back
as a token that keeps only brand, last four digits and expiry. Stripe's test
cards tokenize; what they do (decline, insufficient funds, extra
authentication, network error) shows when a charge uses the token. Runs on
SQLite and on PostgreSQL.
"""

import sqlite3
import tempfile
import time
import unittest
from pathlib import Path

from tests.http.agora import ProblemAssertions, Server, pg_url, run_agora

PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
YEAR = time.gmtime().tm_year


def card(number="4242424242424242", exp_month=12, exp_year=YEAR + 3, cvc="123", **extra):
    return {"card_number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc, **extra}


class SandboxTokens(ProblemAssertions):
    database = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(database=cls.database)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r}:\n{cls.server.output()[-4000:]}")

    def tokenize(self, body):
        return self.server.request("POST", "/sandbox/v1/tokens", body)

    def test_test_cards_become_tokens_without_the_number(self):
        """Stripe's test cards (and any other valid number) give a token:
        id tok_…, object token, card brand, last4 and expiry; the answer never
        holds the card number or the CVC."""
        cases = [("4242424242424242", "visa"), ("4000000000000002", "visa"), ("4000000000009995", "visa"),
                 ("4000002500003155", "visa"), ("4000000000000119", "visa"), ("5555 5555 5555 4444", "mastercard"),
                 ("6011-1111-1111-1117", "discover")]
        ids = set()
        for number, brand in cases:
            with self.subTest(number=number):
                r = self.tokenize(card(number, cvc="987"))
                body = self.assertJson(r, 200)
                self.assertTrue(body["id"].startswith("tok_"), body)
                self.assertEqual(body["object"], "token")
                self.assertEqual(body["card"], {"brand": brand, "last4": number[-4:], "exp_month": 12,
                                                "exp_year": YEAR + 3})
                self.assertIs(body["livemode"], False)
                digits = number.replace(" ", "").replace("-", "")
                self.assertNotIn(digits.encode(), r.raw)
                self.assertNotIn(b"987", r.raw)
                ids.add(body["id"])
        self.assertEqual(len(ids), len(cases), "every token is new")
        amex = self.assertJson(self.tokenize(card("378282246310005", cvc="1234")), 200)
        self.assertEqual(amex["card"]["brand"], "amex")

    def test_bad_cards_are_validation_problems(self):
        """A number failing Luhn or of the wrong length, a month outside
        1-12, a past or far-future expiry, a CVC of the wrong length, missing
        or unknown fields and wrong types: 400 naming the field."""
        cases = [
            ("card_number", card("4242424242424241")), ("card_number", card("424242424242")),
            ("card_number", card("4242x42424242424")), ("card_number", card("")),
            ("exp_month", card(exp_month=0)), ("exp_month", card(exp_month=13)), ("exp_month", card(exp_month="12")),
            ("exp_year", card(exp_year=YEAR - 1)), ("exp_year", card(exp_year=YEAR + 21)),
            ("cvc", card(cvc="12")), ("cvc", card(cvc="12a")), ("cvc", card("378282246310005", cvc="123")),
            ("cvc", card(cvc=123)), ("surname", card(surname="Lovelace")),
        ]
        for field, body in cases:
            with self.subTest(field=field, body=body):
                problem = self.assertProblem(self.tokenize(body), 400, "validation")
                self.assertIn(field, [e["field"] for e in problem["errors"]], problem)
        for missing in ("card_number", "exp_month", "exp_year", "cvc"):
            body = card()
            del body[missing]
            problem = self.assertProblem(self.tokenize(body), 400, "validation")
            self.assertIn(missing, [e["field"] for e in problem["errors"]])
        if time.gmtime().tm_mon > 1:
            expired = self.assertProblem(self.tokenize(card(exp_month=time.gmtime().tm_mon - 1, exp_year=YEAR)),
                                         400, "validation")
            self.assertEqual([e["field"] for e in expired["errors"]], ["exp_month"])
        self.assertProblem(self.server.request("POST", "/sandbox/v1/tokens", raw="{", headers={
            "Content-Type": "application/json"}), 400, "malformed-json")
        self.assertProblem(self.server.request("POST", "/sandbox/v1/tokens", raw="x", headers={
            "Content-Type": "text/plain"}), 415)

    def test_card_numbers_reach_no_log_and_no_file(self):
        """The full number is neither logged nor stored: it is in no log line
        and in no file of the data folder (SQLite databases and their WAL
        included); the /v1 API refuses it outright."""
        numbers = ["4242424242424242", "5555555555554444"]
        for n in numbers:
            self.assertJson(self.tokenize(card(n)), 200)
        self.assertProblem(self.server.request("POST", "/v1/auth/register", card()), 400, "card-data-refused")
        self.server.wait_for_log(lambda l: l.get("path") == "/v1/auth/register", what="the last access log line")
        for n in numbers:
            self.assertNotIn(n, self.server.output())
        if self.database == "sqlite":
            for path in self.server.data_dir.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    for n in numbers:
                        self.assertNotIn(n.encode(), data, f"{path} holds a card number")


class LedgerVerify(unittest.TestCase):
    """`agora ledger verify` (same --data-dir/--database-url as serve) exits
    0 only when every invariant holds, and names what is wrong otherwise."""

    def test_exit_status_follows_the_invariants(self):
        with tempfile.TemporaryDirectory() as d:
            ok = run_agora("ledger", "verify", "--data-dir", d)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("ledger ok", ok.stdout)
            db = sqlite3.connect(Path(d) / "payments.db")
            with db:
                db.execute("INSERT INTO ledger_transactions (id, kind, reference, idempotency_key, created_at_ms) "
                           "VALUES ('ltx_BROKEN', 'test', 'x', NULL, 0)")
                db.execute("INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                           "VALUES ('ltx_BROKEN', 0, 'escrow:ord_1', 1000, 'EUR')")
                db.execute("INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                           "VALUES ('ltx_BROKEN', 1, 'buyer_payments', -999, 'EUR')")
            db.close()
            bad = run_agora("ledger", "verify", "--data-dir", d)
            self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
            self.assertIn("ltx_BROKEN", bad.stdout)


class SandboxTokensOnSqlite(SandboxTokens, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class SandboxTokensOnPostgres(SandboxTokens, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
