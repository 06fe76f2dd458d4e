"""Every bad input gets a 4xx application/problem+json and writes nothing.

Each refusal is checked for its status, its problem+json shape (type, title,
status) and, where it could have written something, for the absence of the
write: a refused registration leaves the email free (registering it properly
afterwards gives 201, not 409, and the refused credentials do not log in), a
refused update leaves the account as it was.

BadInput holds the tests; they run on SQLite and on PostgreSQL. The server
runs with --max-body-bytes 2048 (so the 413 test sends little) and a high
--login-max-failures (several tests log in wrongly on purpose).
"""

import hashlib
import hmac
import json
import time
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.http.agora import (GOOD_PASSWORD, HttpReader, ProblemAssertions, Server, b64url, b64url_decode, bearer,
                              jwt_parts, make_jwt, pg_url, unique_email)

MAX_BODY = 2048
PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"
IBAN = "DE89370400440532013000"


class BadInput(ProblemAssertions):
    database = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--max-body-bytes", str(MAX_BODY), "--login-max-failures", "1000", database=cls.database)
        cls.buyer = cls.server.new_user(tag="buyer")
        cls.admin = cls.server.new_admin()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    # -- helpers -------------------------------------------------------------------

    def post(self, path, raw=None, body=None, headers=None):
        return self.server.request("POST", path, body=body, raw=raw, headers=headers)

    def assertEmailFree(self, email, password=GOOD_PASSWORD):
        """Nothing was written for `email`: its credentials do not log in and
        it can be registered now."""
        self.assertProblem(self.server.login(email, password, expect=None), 401)
        r = self.server.register(email, expect=None)
        self.assertEqual(r.status, 201, f"{email} was taken by a refused request: {r!r}")
        self.assertEqual(r.body["roles"], ["buyer"])

    def me(self, account):
        r = self.server.request("GET", "/v1/me", headers=account.auth())
        self.assertEqual(r.status, 200, r)
        return r.body

    def registration(self, address, **override):
        body = {"email": address, "password": GOOD_PASSWORD, "display_name": "Someone"}
        body.update(override)
        return body

    # -- malformed bodies ------------------------------------------------------------

    def test_malformed_json_is_refused(self):
        email = unique_email("malformed")
        good = json.dumps(self.registration(email))
        for raw in (good[:-1],                       # truncated
                    good.replace('"', "'"),           # single quotes
                    good[:-1] + ',}',                 # trailing comma
                    good + ' {"x": 1}',               # two documents
                    good + " garbage",
                    "{email: 1}",
                    "nul",
                    "\x00" + good):
            with self.subTest(raw=raw[:40]):
                self.assertProblem(self.post("/v1/auth/register", raw=raw), 400, "malformed-json")
        self.assertEmailFree(email)

    def test_body_must_be_a_json_object(self):
        for raw in ("[]", '["email"]', '"text"', "42", "null", "true"):
            for path in ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"):
                with self.subTest(raw=raw, path=path):
                    self.assertProblem(self.post(path, raw=raw), 400)

    def test_empty_body_on_post_is_refused(self):
        for path in ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout",
                     "/v1/auth/email/verify", "/v1/auth/password/forgot", "/v1/auth/password/reset"):
            with self.subTest(path=path):
                self.assertProblem(self.post(path, raw=b""), 400)
                self.assertProblem(self.server.request("POST", path), 400)  # no Content-Type either
        self.assertProblem(self.post("/v1/me/seller", raw=b"", headers=self.buyer.auth()), 400)
        self.assertProblem(self.server.request("PATCH", "/v1/me", raw=b"", headers=self.buyer.auth()), 400)
        self.assertEqual(self.me(self.buyer)["roles"], ["buyer"])

    def test_invalid_utf8_in_a_json_string_is_refused(self):
        email = unique_email("utf8")
        prefix = ('{"email":"%s","password":"%s","display_name":"' % (email, GOOD_PASSWORD)).encode()
        for bad in (b"\xff\xfe",            # never valid
                    b"caf\xc3",             # truncated sequence
                    b"\xc0\xaf",            # overlong "/"
                    b"\xed\xa0\x80",        # a UTF-16 surrogate encoded in UTF-8
                    b"\xf4\x90\x80\x80",    # above U+10FFFF
                    b"\\ud800",             # a lone surrogate escape
                    b"\\udc00x"):
            with self.subTest(bad=bad):
                self.assertProblem(self.post("/v1/auth/register", raw=prefix + bad + b'"}'), 400)
        self.assertEmailFree(email)
        # Valid multi-byte text is fine.
        r = self.server.register(display_name="Zoë 名前 🙂")
        self.assertEqual(r.body["display_name"], "Zoë 名前 🙂")

    def test_deeply_nested_json_is_refused(self):
        email = unique_email("nested")
        for depth in (64, 900):
            nested = "[" * depth + "]" * depth
            raw = '{"email":"%s","password":"%s","display_name":"X","extra":%s}' % (email, GOOD_PASSWORD, nested)
            self.assertLess(len(raw), MAX_BODY)
            with self.subTest(depth=depth):
                self.assertProblem(self.post("/v1/auth/register", raw=raw), 400)
        # Unclosed nesting too.
        self.assertProblem(self.post("/v1/auth/register", raw="{\"a\":" + "[" * 1500), 400)
        self.assertEmailFree(email)

    # -- fields ------------------------------------------------------------------------

    def test_wrong_types_are_refused(self):
        cases = [("email", 42), ("email", ["a@example.com"]), ("password", 12345678901),
                 ("password", {"value": GOOD_PASSWORD}), ("display_name", True), ("display_name", 3.5)]
        for field, value in cases:
            email = unique_email("types")
            with self.subTest(field=field, value=value):
                body = self.registration(email, **{field: value})
                self.assertProblem(self.post("/v1/auth/register", body=body), 400, "validation", fields=[field])
        self.assertEmailFree(email)  # the last one: display_name was wrong, email and password were fine
        for path, body, field in (("/v1/auth/login", {"email": 1, "password": GOOD_PASSWORD}, "email"),
                                  ("/v1/auth/login", {"email": self.buyer.email, "password": None}, "password"),
                                  ("/v1/auth/refresh", {"refresh_token": 7}, "refresh_token"),
                                  ("/v1/auth/logout", {"refresh_token": [self.buyer.refresh]}, "refresh_token"),
                                  ("/v1/auth/email/verify", {"token": False}, "token"),
                                  ("/v1/auth/password/forgot", {"email": {"a": 1}}, "email"),
                                  ("/v1/auth/password/reset", {"token": "x" * 43, "password": 5}, "password")):
            with self.subTest(path=path, body=body):
                self.assertProblem(self.post(path, body=body), 400, fields=[field])
        r = self.server.request("PATCH", "/v1/me", {"display_name": 5}, headers=self.buyer.auth())
        self.assertProblem(r, 400, fields=["display_name"])
        r = self.post("/v1/me/seller", body={"display_name": "Shop", "payout": "DE89..."}, headers=self.buyer.auth())
        self.assertProblem(r, 400, fields=["payout"])
        self.assertEqual(self.me(self.buyer)["roles"], ["buyer"])

    def test_missing_fields_are_refused(self):
        for field in ("email", "password", "display_name"):
            email = unique_email("missing")
            body = self.registration(email)
            del body[field]
            with self.subTest(missing=field):
                self.assertProblem(self.post("/v1/auth/register", body=body), 400, "validation", fields=[field])
        self.assertEmailFree(email)  # display_name was missing
        self.assertProblem(self.post("/v1/auth/register", body={}), 400, fields=["email", "password", "display_name"])
        self.assertProblem(self.post("/v1/auth/login", body={"email": self.buyer.email}), 400, fields=["password"])
        self.assertProblem(self.post("/v1/auth/refresh", body={}), 400, fields=["refresh_token"])
        self.assertProblem(self.post("/v1/auth/password/reset", body={"password": "Some-long-Phrase-1"}), 400,
                           fields=["token"])
        r = self.post("/v1/me/seller", body={"display_name": "Shop", "payout": {"account_holder": "Ada"}},
                      headers=self.buyer.auth())
        self.assertProblem(r, 400, fields=["payout.iban"])
        self.assertProblem(self.post("/v1/me/seller", body={"display_name": "Shop"}, headers=self.buyer.auth()), 400,
                           fields=["payout"])
        self.assertEqual(self.me(self.buyer)["roles"], ["buyer"])

    def test_unknown_fields_are_refused_so_no_mass_assignment(self):
        email = unique_email("mass")
        for extra in ({"roles": ["admin"]}, {"role": "admin"}, {"is_admin": True}, {"email_verified": True},
                      {"id": "usr_01M8HAQMB7ZXT9YCSENAM41Z7G"}, {"seller": {"display_name": "x"}}):
            with self.subTest(extra=extra):
                r = self.post("/v1/auth/register", body=self.registration(email, **extra))
                self.assertProblem(r, 400, "validation", fields=list(extra))
        self.assertEmailFree(email)
        # And what did get created is a plain buyer, in the token too.
        tokens = self.server.login(email).body
        self.assertEqual(jwt_parts(tokens["access_token"])[1]["roles"], ["buyer"])
        r = self.server.request("GET", f"/v1/admin/users/{self.admin.id}", headers=bearer(tokens["access_token"]))
        self.assertProblem(r, 403)

        r = self.post("/v1/auth/login", body={"email": email, "password": GOOD_PASSWORD, "remember_me": True})
        self.assertProblem(r, 400, fields=["remember_me"])

    def test_unknown_fields_on_updates_change_nothing(self):
        a = self.server.new_user(display_name="Unchanged")
        before = self.me(a)
        for body in ({"roles": ["admin"]}, {"email": unique_email()}, {"display_name": "Changed", "roles": ["admin"]},
                     {"display_name": "Changed", "email_verified": True}):
            with self.subTest(body=body):
                r = self.server.request("PATCH", "/v1/me", body, headers=a.auth())
                self.assertProblem(r, 400, "validation", fields=[k for k in body if k != "display_name"])
        self.assertEqual(self.me(a), before)
        payout = {"account_holder": "Ada", "iban": IBAN, "bic": "COBADEFFXXX"}
        r = self.post("/v1/me/seller", body={"display_name": "Shop", "payout": payout}, headers=a.auth())
        self.assertProblem(r, 400, fields=["payout.bic"])
        r = self.post("/v1/me/seller",
                      body={"display_name": "Shop", "payout": {"account_holder": "Ada", "iban": IBAN},
                            "roles": ["admin"]},
                      headers=a.auth())
        self.assertProblem(r, 400, fields=["roles"])
        self.assertEqual(self.me(a), before)

    def test_invalid_email_is_refused(self):
        for email in ("not-an-email", "a@b", "a@@example.com", "a b@example.com", "@example.com", "a@.example.com",
                      "a@example..com", "ä@example.com"):
            with self.subTest(email=email):
                r = self.post("/v1/auth/register", body=self.registration(email))
                self.assertProblem(r, 400, "validation", fields=["email"])
        self.assertProblem(self.post("/v1/auth/password/forgot", body={"email": "nope"}), 400, fields=["email"])

    def test_weak_or_common_passwords_are_refused_with_field_errors(self):
        email = unique_email("weakpw")
        local = email.split("@")[0]
        for password in ("short1!", "password", "password123", "Password1!", "123456789", "qwertyuiop",
                         "aaaaaaaaaaaa", "abcdefghij", local + "xyz", "x" * 129):
            with self.subTest(password=password):
                r = self.post("/v1/auth/register", body=self.registration(email, password=password))
                body = self.assertProblem(r, 400, "validation", fields=["password"])
                self.assertTrue(all(e.get("message") for e in body["errors"]), body)
        self.assertEmailFree(email)

    def test_too_long_display_names_are_refused(self):
        email = unique_email("longname")
        for name in ("x" * 65, "é" * 65, "", "   ", "bell\u0007", "new\nline"):
            with self.subTest(name=name):
                r = self.post("/v1/auth/register", body=self.registration(email, display_name=name))
                self.assertProblem(r, 400, "validation", fields=["display_name"])
        self.assertEmailFree(email)
        # 64 characters (not bytes) is the limit.
        self.assertEqual(self.server.register(display_name="é" * 64).body["display_name"], "é" * 64)
        a = self.server.new_user(display_name="Kept")
        r = self.server.request("PATCH", "/v1/me", {"display_name": "y" * 65}, headers=a.auth())
        self.assertProblem(r, 400, fields=["display_name"])
        r = self.post("/v1/me/seller", body={"display_name": "z" * 65,
                                             "payout": {"account_holder": "Ada", "iban": IBAN}}, headers=a.auth())
        self.assertProblem(r, 400, fields=["display_name"])
        me = self.me(a)
        self.assertEqual(me["display_name"], "Kept")
        self.assertIsNone(me["seller"])

    def test_bad_one_time_and_refresh_tokens_are_refused(self):
        for path, body in (("/v1/auth/email/verify", {"token": "nonsense"}),
                           ("/v1/auth/email/verify", {"token": "a" * 300}),
                           ("/v1/auth/password/reset", {"token": "nonsense", "password": "Fresh-Maple-Lantern-5"})):
            with self.subTest(path=path):
                self.assertProblem(self.post(path, body=body), 400)
        self.assertProblem(self.post("/v1/auth/refresh", body={"refresh_token": "x" * 43}), 401)
        self.assertProblem(self.post("/v1/auth/refresh", body={"refresh_token": ""}), 400, fields=["refresh_token"])
        self.server.login(self.buyer.email)  # the password was not changed by the bad reset

    # -- limits ------------------------------------------------------------------------

    def test_body_over_the_limit_is_413(self):
        email = unique_email("big")
        body = json.dumps(self.registration(email))
        over = body[:-1] + " " * (MAX_BODY + 1 - len(body)) + "}"
        self.assertEqual(len(over), MAX_BODY + 1)
        self.assertProblem(self.post("/v1/auth/register", raw=over), 413)
        # Declared too large: refused before the body is sent.
        r = self.server.raw_exchange(b"POST /v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        self.assertEqual(r[0], 413, r)
        self.assertEqual(r[1]["content-type"], "application/problem+json")
        problem = json.loads(r[2])
        self.assertEqual(problem["status"], 413)
        self.assertTrue(problem["type"] and problem["title"])
        # Chunked, no length declared.
        chunk = over.encode()
        r = self.server.raw_exchange(b"POST /v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                     b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        self.assertEqual(r[0], 413, r)
        self.assertEmailFree(email)
        # Exactly at the limit is fine.
        email = unique_email("edge")
        body = json.dumps(self.registration(email))
        at = body[:-1] + " " * (MAX_BODY - len(body)) + "}"
        self.assertEqual(self.post("/v1/auth/register", raw=at).status, 201)

    def test_headers_over_the_limit_are_431(self):
        email = unique_email("headers")
        body = json.dumps(self.registration(email)).encode()
        head = (b"POST /v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n" % len(body))
        for extra in (b"X-Long: " + b"a" * (17 * 1024) + b"\r\n",
                      b"".join(b"X-Many-%d: value\r\n" % i for i in range(1500))):
            with self.subTest(size=len(extra)):
                r = self.server.raw_exchange(head + extra + b"\r\n" + body)
                self.assertIsNotNone(r, "the connection closed without an answer")
                self.assertEqual(r[0], 431, r)
                self.assertEqual(r[1]["content-type"], "application/problem+json")
                problem = json.loads(r[2])
                self.assertEqual(problem["status"], 431)
                self.assertTrue(problem["type"] and problem["title"])
        self.assertEmailFree(email)

    # -- card data ---------------------------------------------------------------------

    def test_card_numbers_are_refused_everywhere_and_never_logged(self):
        """Any body or query string holding a card number (13-19 digits that
        pass the Luhn check, plain or grouped by spaces or dashes, in any
        field, string or number) is refused with 400 card-data-refused before
        the handler runs, so nothing is written; the number appears in no log
        line, not even when it is typed into a URL path."""
        cards = ["4242424242424242", "4242 4242 4242 4242", "4000-0000-0000-0002", "378282246310005",
                 "5555 5555 5555 4444"]
        for card in cards:
            with self.subTest(card=card):
                email = unique_email("card")
                r = self.post("/v1/auth/register", body=self.registration(email, display_name=f"Card {card}"))
                self.assertProblem(r, 400, "card-data-refused")
                self.assertNotIn(card.encode(), r.raw)
                self.assertEmailFree(email)
                r = self.server.request("PATCH", "/v1/me", {"display_name": card}, headers=self.buyer.auth())
                self.assertProblem(r, 400, "card-data-refused")
                self.assertNotEqual(self.me(self.buyer)["display_name"], card)
        number = self.server.request("PATCH", "/v1/me", raw='{"display_name": 4242424242424242}',
                                     headers={**self.buyer.auth(), "Content-Type": "application/json"})
        self.assertProblem(number, 400, "card-data-refused")
        query = self.server.request("GET", "/v1/products?seller=4242%204242%204242%204242")
        self.assertProblem(query, 400, "card-data-refused")
        path = self.server.request("GET", "/v1/products/4242424242424242")
        self.assertProblem(path, 404)
        # Numbers that are not cards pass: an IBAN, a failing Luhn check.
        ok = self.server.request("PATCH", "/v1/me", {"display_name": "Ref 4242424242424241"},
                                 headers=self.buyer.auth())
        self.assertEqual(ok.status, 200, ok)
        self.server.wait_for_log(lambda l: l.get("path") == "/v1/me" and l.get("status") == 200,
                                 what="the access log line of the last request")
        text = self.server.output()
        for card in cards + ["4242424242424242"]:
            self.assertNotIn(card, text, "a card number reached the log")

    # -- content type, routes and methods ----------------------------------------------------

    def test_wrong_content_type_is_415(self):
        email = unique_email("ctype")
        good = json.dumps(self.registration(email))
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/xml", "application/jsonx", "json", None):
            with self.subTest(ctype=ctype):
                headers = {"Content-Type": ctype} if ctype else {}
                if ctype is None:
                    # http.client adds no Content-Type by itself.
                    r = self.server.raw_exchange(
                        b"POST /v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(good), good.encode()))
                    self.assertEqual(r[0], 415, r)
                    self.assertEqual(r[1]["content-type"], "application/problem+json")
                    self.assertEqual(json.loads(r[2])["status"], 415)
                else:
                    self.assertProblem(self.post("/v1/auth/register", raw=good, headers=headers), 415)
        r = self.server.request("PATCH", "/v1/me", raw='{"display_name":"Via text"}',
                                headers={**self.buyer.auth(), "Content-Type": "text/plain"})
        self.assertProblem(r, 415)
        self.assertNotEqual(self.me(self.buyer)["display_name"], "Via text")
        self.assertEmailFree(email)
        # Parameters and case do not matter.
        r = self.post("/v1/auth/register", raw=json.dumps(self.registration(unique_email())),
                      headers={"Content-Type": "Application/JSON; charset=utf-8"})
        self.assertEqual(r.status, 201, r)

    def test_unknown_route_is_404(self):
        for method, path in (("GET", "/v1/nothing"), ("POST", "/v1/auth/registe"), ("GET", "/"),
                             ("GET", "/v1/admin/users"), ("GET", "/v1/me/seller/extra"), ("GET", "/v2/me"),
                             ("DELETE", "/v1/admin/users/x/y")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.server.request(method, path, headers=self.admin.auth()), 404)

    def test_wrong_method_is_405_with_allow(self):
        for method, path, allowed in (("GET", "/v1/auth/register", {"POST"}), ("DELETE", "/v1/me", {"GET", "PATCH"}),
                                      ("PUT", "/v1/me/seller", {"POST"}), ("POST", "/healthz", {"GET"}),
                                      ("DELETE", f"/v1/admin/users/{self.buyer.id}", {"GET"}),
                                      ("POST", "/.well-known/jwks.json", {"GET"})):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, headers=self.admin.auth())
                self.assertProblem(r, 405)
                allow = {m.strip() for m in (r.headers.get("Allow") or "").split(",") if m.strip()}
                self.assertTrue(allowed <= allow, f"Allow: {r.headers.get('Allow')!r}, wanted {allowed}")
        # A valid body on the wrong method writes nothing.
        email = unique_email("method")
        r = self.server.request("PUT", "/v1/auth/register", self.registration(email))
        self.assertProblem(r, 405)
        self.assertEmailFree(email)

    def test_malformed_http_is_400(self):
        for raw in (b"HELLO\r\n\r\n", b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
                    b"GET /v1/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET http://example.com/v1/me HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /healthz HTTP/1.1\nHost: x\n\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
            with self.subTest(raw=raw):
                r = self.server.raw_exchange(raw)
                self.assertIsNotNone(r, "the connection closed without an answer")
                self.assertEqual(r[0], 400, r)
                self.assertEqual(r[1]["content-type"], "application/problem+json")
                self.assertEqual(json.loads(r[2])["status"], 400)
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_requests_that_could_smuggle_a_second_one_are_400_and_end_the_connection(self):
        # Each would hide "GET /healthz" in what one reader takes for a body
        # and another for the next request (RFC 9112 6.1, 6.3, 3.2).
        email = unique_email("smuggle")
        body = json.dumps(self.registration(email)).encode()
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        post = b"POST /v1/auth/register HTTP/1.1\r\nContent-Type: application/json\r\n"
        for name, raw in (
                ("length and chunked", post + b"Host: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n" % (len(body) + 5) + smuggled),
                ("two lengths", post + b"Host: x\r\nContent-Length: %d\r\nContent-Length: 0\r\n\r\n%s"
                 % (len(body), body) + smuggled),
                ("unknown transfer coding", post + b"Host: x\r\nTransfer-Encoding: gzip\r\n\r\n" + body + smuggled),
                ("chunked not last", post + b"Host: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" + body + smuggled),
                ("HTTP/1.1 without Host", post + b"Content-Length: %d\r\n\r\n%s" % (len(body), body) + smuggled)):
            with self.subTest(name):
                with self.server.raw_socket() as sock:
                    sock.sendall(raw)
                    reader = HttpReader(sock)
                    r = reader.read()
                    self.assertIsNotNone(r, "the connection closed without an answer")
                    self.assertEqual(r[0], 400, r)
                    self.assertEqual(r[1]["content-type"], "application/problem+json")
                    self.assertEqual(r[1].get("connection", "").lower(), "close")
                    try:
                        self.assertIsNone(reader.read(5), "the smuggled request was answered")
                    except ConnectionResetError:
                        pass
        self.assertEmailFree(email)

    # -- tokens --------------------------------------------------------------------

    def server_key(self):
        """(kid, private key) the server signs with, read from its data folder."""
        kid = (self.server.data_dir / "keys" / "jwt-keys" / "active").read_text().strip()
        pem = (self.server.data_dir / "keys" / "jwt-keys" / f"{kid}.pem").read_bytes()
        return kid, serialization.load_pem_private_key(pem, password=None)

    def claims(self, account, **override):
        _, claims = jwt_parts(account.access)
        now = int(time.time())
        claims.update(iat=now, nbf=now, exp=now + 300, jti="at_forged")
        claims.update(override)
        return claims

    def assertTokenRefused(self, token, path="/v1/me"):
        r = self.server.request("GET", path, headers=bearer(token))
        self.assertProblem(r, 401)
        self.assertIn("Bearer", r.headers.get("WWW-Authenticate") or "")
        return r

    def test_a_token_signed_with_the_server_key_is_accepted(self):
        # The control for the forgeries below: they differ from this one only
        # in what each test changes.
        kid, key = self.server_key()
        token = make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": kid}, self.claims(self.buyer), key.sign)
        self.assertEqual(self.server.request("GET", "/v1/me", headers=bearer(token)).body["id"], self.buyer.id)

    def test_expired_tokens_are_401(self):
        kid, key = self.server_key()
        now = int(time.time())
        token = make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": kid},
                         self.claims(self.buyer, iat=now - 1000, nbf=now - 1000, exp=now - 120), key.sign)
        self.assertTokenRefused(token)

    def test_tokens_with_bad_claims_are_401(self):
        kid, key = self.server_key()
        now = int(time.time())
        header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
        for name, claims in (("issuer", self.claims(self.buyer, iss="https://evil.example")),
                             ("audience", self.claims(self.buyer, aud="someone-else")),
                             ("not yet valid", self.claims(self.buyer, nbf=now + 600)),
                             ("issued in the future", self.claims(self.buyer, iat=now + 600)),
                             ("no expiry", {k: v for k, v in self.claims(self.buyer).items() if k != "exp"}),
                             ("no subject", {k: v for k, v in self.claims(self.buyer).items() if k != "sub"}),
                             ("no issuer", {k: v for k, v in self.claims(self.buyer).items() if k != "iss"})):
            with self.subTest(name):
                self.assertTokenRefused(make_jwt(header, claims, key.sign))

    def test_tampered_tokens_are_401(self):
        h, p, s = self.buyer.access.split(".")
        claims = json.loads(b64url_decode(p))
        claims["roles"] = ["buyer", "admin"]
        tampered = h + "." + b64url(json.dumps(claims, separators=(",", ":"))) + "." + s
        self.assertTokenRefused(tampered)
        self.assertTokenRefused(tampered, f"/v1/admin/users/{self.buyer.id}")
        claims = json.loads(b64url_decode(p))
        claims["sub"] = self.admin.id
        self.assertTokenRefused(h + "." + b64url(json.dumps(claims, separators=(",", ":"))) + "." + s)
        sig = bytearray(b64url_decode(s))
        sig[0] ^= 1
        self.assertTokenRefused(h + "." + p + "." + b64url(bytes(sig)))
        header = json.loads(b64url_decode(h))
        header["kid"] = "k0-00000000"
        self.assertTokenRefused(b64url(json.dumps(header)) + "." + p + "." + s)
        for garbage in ("abc", "a.b.c", h + "." + p, h + "." + p + "." + s + ".x", "." + p + "." + s,
                        self.buyer.access + "x", "x" * 5000, h + "." + p + ".***"):
            with self.subTest(garbage=garbage[:30]):
                self.assertTokenRefused(garbage)

    def test_tokens_signed_with_another_key_are_401(self):
        kid, _ = self.server_key()
        stranger = Ed25519PrivateKey.generate()
        claims = self.claims(self.buyer)
        self.assertTokenRefused(make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims, stranger.sign))
        self.assertTokenRefused(make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": "k1-stranger"}, claims, stranger.sign))
        self.assertTokenRefused(make_jwt({"alg": "EdDSA", "typ": "JWT"}, claims, stranger.sign))

    def test_alg_none_tokens_are_401(self):
        kid, _ = self.server_key()
        claims = self.claims(self.buyer)
        real_sig = self.buyer.access.rsplit(".", 1)[1]
        for alg in ("none", "None", "NONE", ""):
            header = {"alg": alg, "typ": "JWT", "kid": kid}
            unsigned = make_jwt(header, claims, lambda _: b"")
            with self.subTest(alg=alg):
                self.assertTrue(unsigned.endswith("."))
                self.assertTokenRefused(unsigned)
                self.assertTokenRefused(unsigned + real_sig)
                self.assertTokenRefused(unsigned[:-1])
        self.assertTokenRefused(make_jwt({"typ": "JWT", "kid": kid}, claims, lambda _: b""))

    def test_hs256_signed_with_the_public_key_is_401(self):
        kid, key = self.server_key()
        jwks = self.server.request("GET", "/.well-known/jwks.json").body
        jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
        public = key.public_key()
        secrets_to_try = {
            "raw public key": public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
            "x as text": jwk["x"].encode(),
            "JWK as JSON": json.dumps(jwk).encode(),
            "PEM": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        }
        claims = self.claims(self.buyer)
        for name, secret in secrets_to_try.items():
            for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
                token = make_jwt({"alg": alg, "typ": "JWT", "kid": kid}, claims,
                                 lambda data: hmac.new(secret, data, digest).digest())
                with self.subTest(secret=name, alg=alg):
                    self.assertTokenRefused(token)
        # Other asymmetric algorithms are not accepted for this key either.
        for alg in ("ES256", "RS256", "Ed25519"):
            with self.subTest(alg=alg):
                self.assertTokenRefused(make_jwt({"alg": alg, "typ": "JWT", "kid": kid}, claims, key.sign))

    def test_a_valid_token_on_a_route_its_role_may_not_use_is_403(self):
        r = self.server.request("GET", f"/v1/admin/users/{self.buyer.id}", headers=self.buyer.auth())
        self.assertProblem(r, 403)
        seller = self.server.new_user(tag="seller")
        onboard = {"display_name": "Shop", "payout": {"account_holder": "Ada", "iban": IBAN}}
        self.assertEqual(self.post("/v1/me/seller", body=onboard, headers=seller.auth()).status, 200)
        token = self.server.login(seller.email).body["access_token"]
        self.assertIn("seller", jwt_parts(token)[1]["roles"])
        self.assertProblem(self.server.request("GET", f"/v1/admin/users/{self.buyer.id}", headers=bearer(token)), 403)
        # A forged admin role in a token signed by a stranger is no way round it.
        stranger = Ed25519PrivateKey.generate()
        kid, _ = self.server_key()
        forged = make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": kid},
                          self.claims(self.buyer, roles=["buyer", "admin"]), stranger.sign)
        self.assertTokenRefused(forged, f"/v1/admin/users/{self.buyer.id}")

    def test_refresh_token_reuse_is_401(self):
        a = self.server.new_user(tag="reuse")
        rotated = self.post("/v1/auth/refresh", body={"refresh_token": a.refresh})
        self.assertEqual(rotated.status, 200, rotated)
        self.assertProblem(self.post("/v1/auth/refresh", body={"refresh_token": a.refresh}), 401,
                           "refresh-token-reused")
        self.assertProblem(self.post("/v1/auth/refresh", body={"refresh_token": rotated.body["refresh_token"]}), 401)


class BadInputOnSqlite(BadInput, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class BadInputOnPostgres(BadInput, unittest.TestCase):
    database = "postgres"


if __name__ == "__main__":
    unittest.main()
