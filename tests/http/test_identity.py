"""Identity flows against the real server, on SQLite and on PostgreSQL.

IdentityFlows holds the tests; IdentityOnSqlite and IdentityOnPostgres run
them on each store. Tests that share a class-wide server use fresh accounts,
so they do not interfere; the login-throttling tests get servers of their own
(the per-IP counter is process-wide and every test connects from 127.0.0.1).
"""

import glob
import json
import re
import shutil
import subprocess
import threading
import time
import unittest
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.http.agora import (GOOD_PASSWORD, ProblemAssertions, Server, b64url_decode, bearer, drop_pg_database,
                              jwt_parts, pg_url, run_agora, unique_email)

# A valid IBAN (the standard German example); mod-97 checksum holds.
IBAN = "DE89370400440532013000"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PG_SKIP = "AGORA_TEST_DATABASE_URL is not set: no throwaway PostgreSQL to run on (scripts/test starts one)"


def find_pg_dump():
    found = shutil.which("pg_dump")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    return candidates[-1] if candidates else None


class IdentityFlows(ProblemAssertions):
    database = None  # "sqlite" or "postgres", set by the concrete classes

    @classmethod
    def setUpClass(cls):
        # Generous throttling limits: a few tests here log in wrongly on purpose.
        cls.server = Server("--login-max-failures", "100", database=cls.database)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    def new_server(self, *args):
        server = Server(*args, database=self.database)
        self.addCleanup(server.stop)
        return server

    # -- registration --------------------------------------------------------------

    def test_register_creates_a_buyer_with_a_normalized_email(self):
        tag = unique_email("Mixed.Case").split("@")[0]
        r = self.server.register(f"  {tag}@Example.COM ", display_name="  Ada Lovelace  ")
        user = self.assertJson(r, 201)
        self.assertRegex(user["id"], r"^usr_[0-9A-Za-z]{10,}$")
        self.assertEqual(user["email"], f"{tag.lower()}@example.com")
        self.assertEqual(user["roles"], ["buyer"])
        self.assertEqual(user["display_name"], "Ada Lovelace")
        self.assertIs(user["email_verified"], False)
        self.assertIsNone(user["seller"])
        self.assertRegex(user["created_at"], RFC3339_UTC)
        self.assertEqual(r.headers.get("Location"), "/v1/me")
        for secret in ("password", "password_hash"):
            self.assertNotIn(secret, user)
        self.assertNotIn(b"argon2", r.raw)
        self.assertNotIn(GOOD_PASSWORD.encode(), r.raw)
        # The normalized address logs in, however it is typed.
        self.server.login(f"{tag.upper()}@EXAMPLE.com ")

    def test_register_twice_with_the_same_email_conflicts(self):
        email = unique_email()
        self.server.register(email)
        r = self.server.register(email.upper(), password="another-Pass-phrase-9", expect=None)
        self.assertProblem(r, 409)
        # The first account keeps its password; the second one was not saved.
        self.server.login(email)
        self.assertProblem(self.server.login(email, "another-Pass-phrase-9", expect=None), 401)

    def test_concurrent_registrations_of_one_email_create_one_account(self):
        email = unique_email("race")
        results = []

        def register():
            results.append(self.server.register(email, expect=None).status)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(results), [201, 409, 409, 409])

    # -- login and tokens ------------------------------------------------------------

    def test_login_returns_a_bearer_token_pair(self):
        email = unique_email()
        user = self.server.register(email).body
        tokens = self.assertJson(self.server.login(email), 200)
        self.assertEqual(tokens["token_type"], "Bearer")
        self.assertIsInstance(tokens["expires_in"], int)
        self.assertEqual(tokens["expires_in"], 900)  # 15 minutes by default
        self.assertIsInstance(tokens["refresh_token"], str)
        self.assertGreaterEqual(len(tokens["refresh_token"]), 32)
        header, claims = jwt_parts(tokens["access_token"])
        self.assertEqual(header["alg"], "EdDSA")
        self.assertTrue(header.get("kid"))
        self.assertEqual(claims["sub"], user["id"])
        self.assertEqual(claims["roles"], ["buyer"])
        self.assertEqual(claims["exp"] - claims["iat"], tokens["expires_in"])
        self.assertLessEqual(abs(claims["iat"] - time.time()), 60)
        self.assertTrue(claims.get("aud"))
        self.assertTrue(claims.get("jti"))
        # Another login gives other tokens.
        again = self.server.login(email).body
        self.assertNotEqual(again["refresh_token"], tokens["refresh_token"])
        self.assertNotEqual(again["access_token"], tokens["access_token"])

    def test_unknown_email_and_wrong_password_answer_alike(self):
        email = unique_email()
        self.server.register(email)
        wrong = self.server.login(email, "not-the-Right-one-77", expect=None)
        unknown = self.server.login(unique_email("nobody"), "not-the-Right-one-77", expect=None)
        self.assertProblem(wrong, 401)
        self.assertProblem(unknown, 401)
        self.assertEqual(wrong.raw, unknown.raw)
        per_request = {"x-request-id", "traceparent", "date"}
        self.assertEqual({(k.lower(), v) for k, v in wrong.headers.items() if k.lower() not in per_request},
                         {(k.lower(), v) for k, v in unknown.headers.items() if k.lower() not in per_request})

    def test_unknown_email_costs_a_password_hash_too(self):
        email = unique_email()
        self.server.register(email)

        def fastest(address):
            times = []
            for _ in range(3):
                start = time.monotonic()
                self.assertEqual(self.server.login(address, "not-the-Right-one-77", expect=None).status, 401)
                times.append(time.monotonic() - start)
            return min(times)

        wrong = fastest(email)
        unknown = fastest(unique_email("nobody"))
        # A real Argon2id verification takes tens of milliseconds; skipping it
        # for unknown accounts would make them answer many times faster.
        self.assertGreater(unknown, wrong * 0.3, f"unknown email {unknown:.3f}s vs wrong password {wrong:.3f}s")

    def test_login_throttling_per_account_grows_and_says_when_to_retry(self):
        server = self.new_server("--login-max-failures", "2")
        email = unique_email("victim")
        server.register(email)
        for _ in range(3):  # two free failures, the third starts a 1 s block
            self.assertProblem(server.login(email, "wrong-Password-123", expect=None), 401)
        blocked = server.login(email, expect=None)  # even the right password waits
        self.assertProblem(blocked, 429)
        self.assertEqual(blocked.headers.get("Retry-After"), "1")
        # Once the block ends, a failure blocks for longer (2 s).
        deadline = time.monotonic() + 10
        while True:
            r = server.login(email, "wrong-Password-123", expect=None)
            if r.status == 401:
                break
            self.assertProblem(r, 429)
            self.assertLess(time.monotonic(), deadline, "the block did not end")
            time.sleep(0.05)
        blocked = server.login(email, expect=None)
        self.assertProblem(blocked, 429)
        self.assertIn(blocked.headers.get("Retry-After"), ("2", "1"))
        self.assertGreaterEqual(int(blocked.headers["Retry-After"]), 1)
        # Other accounts are not blocked by this one.
        other = unique_email("bystander")
        server.register(other)
        server.login(other)
        # After the wait, the right password works again.
        deadline = time.monotonic() + 10
        while server.login(email, expect=None).status == 429:
            self.assertLess(time.monotonic(), deadline, "the block did not end")
            time.sleep(0.1)
        server.login(email)

    def test_login_throttling_per_ip_blocks_spraying_across_accounts(self):
        server = self.new_server("--login-max-failures", "2")  # 8 free failures per IP
        victim = unique_email("sprayed")
        server.register(victim)
        statuses = [server.login(unique_email("spray"), "wrong-Password-123", expect=None).status
                    for _ in range(9)]
        self.assertEqual(statuses, [401] * 9)
        r = server.login(victim, expect=None)
        self.assertProblem(r, 429)
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)

    # -- /v1/me ----------------------------------------------------------------------

    def test_get_and_patch_me(self):
        a = self.server.new_user(display_name="Before")
        status, _, me = self.server.request("GET", "/v1/me", headers=a.auth())
        self.assertEqual(status, 200)
        self.assertEqual(me["id"], a.id)
        self.assertEqual(me["email"], a.email)
        self.assertEqual(me["display_name"], "Before")
        r = self.server.request("PATCH", "/v1/me", {"display_name": "  After  "}, headers=a.auth())
        self.assertEqual(self.assertJson(r, 200)["display_name"], "After")
        self.assertEqual(self.server.request("GET", "/v1/me", headers=a.auth()).body["display_name"], "After")
        # An empty patch changes nothing.
        r = self.server.request("PATCH", "/v1/me", {}, headers=a.auth())
        self.assertEqual(self.assertJson(r, 200)["display_name"], "After")
        self.assertEqual(r.body["email"], a.email)

    def test_me_needs_a_bearer_token(self):
        r = self.server.request("GET", "/v1/me")
        self.assertProblem(r, 401)
        self.assertTrue((r.headers.get("WWW-Authenticate") or "").startswith("Bearer"))
        a = self.server.new_user()
        r = self.server.request("GET", "/v1/me", headers={"Authorization": "Basic " + a.access})
        self.assertProblem(r, 401)

    # -- refresh and logout ------------------------------------------------------------

    def test_refresh_rotates_the_pair(self):
        a = self.server.new_user()
        r = self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh})
        fresh = self.assertJson(r, 200)
        self.assertEqual(fresh["token_type"], "Bearer")
        self.assertNotEqual(fresh["refresh_token"], a.refresh)
        self.assertEqual(jwt_parts(fresh["access_token"])[1]["sub"], a.id)
        self.assertEqual(self.server.request("GET", "/v1/me", headers=bearer(fresh["access_token"])).status, 200)
        # The new refresh token rotates again.
        r = self.server.request("POST", "/v1/auth/refresh", {"refresh_token": fresh["refresh_token"]})
        self.assertEqual(r.status, 200, r)

    def test_refresh_token_reuse_ends_the_whole_session(self):
        a = self.server.new_user()
        fresh = self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh}).body
        reused = self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh})
        self.assertProblem(reused, 401, "refresh-token-reused")
        # The newer token of the same family stops working too.
        self.assertProblem(self.server.request("POST", "/v1/auth/refresh",
                                               {"refresh_token": fresh["refresh_token"]}), 401)
        # Another session of the same user is a different family: unaffected.
        other = self.server.login(a.email).body
        self.assertEqual(self.server.request("POST", "/v1/auth/refresh",
                                             {"refresh_token": other["refresh_token"]}).status, 200)

    def test_logout_revokes_the_refresh_token(self):
        a = self.server.new_user()
        other = self.server.login(a.email).body
        r = self.server.request("POST", "/v1/auth/logout", {"refresh_token": a.refresh})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.raw, b"")
        self.assertProblem(self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh}), 401)
        # Logging out twice, or with an unknown token, tells nothing.
        self.assertEqual(self.server.request("POST", "/v1/auth/logout", {"refresh_token": a.refresh}).status, 204)
        self.assertEqual(self.server.request("POST", "/v1/auth/logout",
                                             {"refresh_token": "x" * 43}).status, 204)
        # Only that session ended.
        self.assertEqual(self.server.request("POST", "/v1/auth/refresh",
                                             {"refresh_token": other["refresh_token"]}).status, 200)

    # -- email verification --------------------------------------------------------------

    def test_email_verification_with_the_mailed_token_works_once(self):
        email = unique_email("verify")
        self.server.register(email)
        mail = self.server.wait_for_mail(email, "verify_email")
        self.assertIn(mail["token"], mail["link"])
        self.assertIn(mail["token"], mail["text"])
        token = mail["token"]
        a = self.server.login(email).body
        r = self.server.request("POST", "/v1/auth/email/verify", {"token": token})
        self.assertEqual(r.status, 204, r)
        self.assertIs(self.server.request("GET", "/v1/me", headers=bearer(a["access_token"])).body["email_verified"],
                      True)
        self.assertIs(jwt_parts(self.server.login(email).body["access_token"])[1]["email_verified"], True)
        # Single use.
        self.assertProblem(self.server.request("POST", "/v1/auth/email/verify", {"token": token}), 400,
                           "invalid-token")
        self.assertProblem(self.server.request("POST", "/v1/auth/email/verify", {"token": "not-a-token"}), 400)

    def test_resending_the_verification_mail(self):
        a = self.server.new_user()
        first = self.server.wait_for_mail(a.email, "verify_email")
        r = self.server.request("POST", "/v1/auth/email/resend", headers=a.auth())
        self.assertEqual(r.status, 202, r)
        second = self.server.wait_for_mail(a.email, "verify_email", count=2)
        self.assertNotEqual(first["token"], second["token"])
        self.assertEqual(self.server.request("POST", "/v1/auth/email/verify", {"token": second["token"]}).status, 204)
        self.assertProblem(self.server.request("POST", "/v1/auth/email/resend", headers=a.auth()), 409)

    # -- password reset -----------------------------------------------------------------

    def test_forgot_password_answers_the_same_for_unknown_and_known_emails(self):
        a = self.server.new_user()
        unknown = unique_email("nobody")
        r_known = self.server.request("POST", "/v1/auth/password/forgot", {"email": a.email})
        r_unknown = self.server.request("POST", "/v1/auth/password/forgot", {"email": unknown})
        self.assertEqual(r_known.status, 202, r_known)
        self.assertEqual(r_unknown.status, 202, r_unknown)
        self.assertEqual(r_known.raw, r_unknown.raw)
        self.server.wait_for_mail(a.email, "reset_password")
        self.assertEqual(self.server.mails_to(unknown), [])

    def test_password_reset_replaces_the_password_and_ends_sessions(self):
        a = self.server.new_user()
        self.assertEqual(self.server.request("POST", "/v1/auth/password/forgot", {"email": a.email}).status, 202)
        token = self.server.wait_for_mail(a.email, "reset_password")["token"]
        new_password = "Brand-new-Saffron-Kite-7"
        # A weak new password is refused and does not use the token up.
        weak = self.server.request("POST", "/v1/auth/password/reset", {"token": token, "password": "password1"})
        self.assertProblem(weak, 400, fields=["password"])
        r = self.server.request("POST", "/v1/auth/password/reset", {"token": token, "password": new_password})
        self.assertEqual(r.status, 204, r)
        self.assertProblem(self.server.login(a.email, expect=None), 401)  # the old password
        self.server.login(a.email, new_password)
        # Sessions from before the reset are over.
        self.assertProblem(self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh}), 401)
        # The token works once.
        again = self.server.request("POST", "/v1/auth/password/reset",
                                    {"token": token, "password": "Another-Fresh-Phrase-8"})
        self.assertProblem(again, 400, "invalid-token")
        self.server.login(a.email, new_password)

    def test_one_time_tokens_only_serve_their_own_purpose(self):
        a = self.server.new_user()
        verify_token = self.server.wait_for_mail(a.email, "verify_email")["token"]
        self.assertEqual(self.server.request("POST", "/v1/auth/password/forgot", {"email": a.email}).status, 202)
        reset_token = self.server.wait_for_mail(a.email, "reset_password")["token"]
        r = self.server.request("POST", "/v1/auth/password/reset",
                                {"token": verify_token, "password": "Cross-Purpose-Heron-3"})
        self.assertProblem(r, 400, "invalid-token")
        self.server.login(a.email)  # the password is unchanged
        self.assertProblem(self.server.request("POST", "/v1/auth/email/verify", {"token": reset_token}), 400,
                           "invalid-token")
        self.assertIs(self.server.request("GET", "/v1/me", headers=a.auth()).body["email_verified"], False)
        # Both still work for what they were made for.
        self.assertEqual(self.server.request("POST", "/v1/auth/email/verify", {"token": verify_token}).status, 204)
        self.assertEqual(self.server.request("POST", "/v1/auth/password/reset",
                                             {"token": reset_token, "password": "Cross-Purpose-Heron-3"}).status, 204)
        self.server.login(a.email, "Cross-Purpose-Heron-3")

    # -- seller onboarding ----------------------------------------------------------------

    def test_seller_onboarding(self):
        a = self.server.new_user()
        body = {"display_name": "Ada's Attic", "payout": {"account_holder": "Ada Lovelace", "iban": IBAN}}
        r = self.server.request("POST", "/v1/me/seller", body, headers=a.auth())
        user = self.assertJson(r, 200)
        self.assertIn("seller", user["roles"])
        self.assertIn("buyer", user["roles"])
        self.assertEqual(user["seller"]["display_name"], "Ada's Attic")
        self.assertEqual(user["seller"]["payout"], {"account_holder": "Ada Lovelace", "iban_last4": "3000"})
        self.assertNotIn(IBAN.encode(), r.raw)
        self.assertNotIn(IBAN[4:].encode(), r.raw)
        # The role shows in tokens issued from now on, by refresh or login.
        self.assertNotIn("seller", jwt_parts(a.access)[1]["roles"])
        refreshed = self.server.request("POST", "/v1/auth/refresh", {"refresh_token": a.refresh}).body
        self.assertIn("seller", jwt_parts(refreshed["access_token"])[1]["roles"])
        self.assertIn("seller", jwt_parts(self.server.login(a.email).body["access_token"])[1]["roles"])
        me = self.server.request("GET", "/v1/me", headers=bearer(refreshed["access_token"])).body
        self.assertEqual(me["seller"]["payout"]["iban_last4"], "3000")
        # Once only.
        self.assertProblem(self.server.request("POST", "/v1/me/seller", body,
                                               headers=bearer(refreshed["access_token"])), 409)
        self.assertIbanNotStoredInClear()

    def assertIbanNotStoredInClear(self):
        if self.database == "sqlite":
            files = glob.glob(str(self.server.data_dir / "*.db*"))
            self.assertTrue(files, "no SQLite files in the data folder")
            for path in files:
                with open(path, "rb") as f:
                    self.assertNotIn(IBAN.encode(), f.read(), path)
        else:
            pg_dump = find_pg_dump()
            if pg_dump is None:
                self.skipTest("pg_dump not found")
            out = subprocess.run([pg_dump, "--data-only", "-d", self.server.database_url], capture_output=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(b"Ada's Attic", out.stdout)  # the dump does hold the seller's data
            self.assertNotIn(IBAN.encode(), out.stdout)

    def test_seller_onboarding_refuses_an_invalid_iban(self):
        a = self.server.new_user()
        bad = "DE89370400440532013001"  # checksum broken
        r = self.server.request("POST", "/v1/me/seller",
                                {"display_name": "Shop", "payout": {"account_holder": "Ada", "iban": bad}},
                                headers=a.auth())
        self.assertProblem(r, 400, fields=["payout.iban"])
        me = self.server.request("GET", "/v1/me", headers=a.auth()).body
        self.assertEqual(me["roles"], ["buyer"])
        self.assertIsNone(me["seller"])

    # -- administrators --------------------------------------------------------------

    def test_admin_created_on_the_command_line_reads_users(self):
        buyer = self.server.new_user(display_name="Someone")
        admin = self.server.new_admin()
        self.assertRegex(admin.id, r"^usr_")
        self.assertIn("admin", jwt_parts(admin.access)[1]["roles"])
        r = self.server.request("GET", f"/v1/admin/users/{buyer.id}", headers=admin.auth())
        user = self.assertJson(r, 200)
        self.assertEqual(user["id"], buyer.id)
        self.assertEqual(user["email"], buyer.email)
        self.assertNotIn("password_hash", user)
        self.assertEqual(self.server.request("GET", f"/v1/admin/users/{admin.id}", headers=admin.auth()).body["roles"],
                         ["buyer", "admin"])
        missing = "usr_" + "0" * 26
        self.assertProblem(self.server.request("GET", f"/v1/admin/users/{missing}", headers=admin.auth()), 404)
        self.assertProblem(self.server.request("GET", "/v1/admin/users/nonsense", headers=admin.auth()), 404)
        # A buyer may not.
        self.assertProblem(self.server.request("GET", f"/v1/admin/users/{admin.id}", headers=buyer.auth()), 403)

    def test_admin_create_refuses_bad_input(self):
        weak = self.server.admin_create(unique_email("admin"), "password")
        self.assertNotEqual(weak.returncode, 0)
        self.assertIn("password", (weak.stdout + weak.stderr).lower())
        email = unique_email("admin")
        self.assertEqual(self.server.admin_create(email).returncode, 0)
        twice = self.server.admin_create(email)
        self.assertNotEqual(twice.returncode, 0)
        self.assertIn("exist", (twice.stdout + twice.stderr).lower())

    # -- token verification by third parties ------------------------------------------------

    def test_jwks_verifies_access_tokens(self):
        a = self.server.new_user()
        r = self.server.request("GET", "/.well-known/jwks.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("Content-Type"), "application/jwk-set+json")
        keys = json.loads(r.raw)["keys"]
        self.assertTrue(keys)
        for k in keys:
            self.assertFalse({"d", "p", "q", "dp", "dq", "qi", "k"} & set(k), f"private material in {k}")
        header, _ = jwt_parts(a.access)
        jwk = [k for k in keys if k["kid"] == header["kid"]]
        self.assertEqual(len(jwk), 1, f"kid {header['kid']} not in {keys}")
        jwk = jwk[0]
        self.assertEqual((jwk["kty"], jwk["crv"]), ("OKP", "Ed25519"))
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
        signing_input, _, sig = a.access.rpartition(".")
        public.verify(b64url_decode(sig), signing_input.encode())  # raises if not valid
        with self.assertRaises(InvalidSignature):
            public.verify(b64url_decode(sig), signing_input.encode() + b"x")

    def test_openid_configuration_names_the_token_issuer(self):
        a = self.server.new_user()
        r = self.server.request("GET", "/.well-known/openid-configuration")
        conf = self.assertJson(r, 200)
        iss = jwt_parts(a.access)[1]["iss"]
        self.assertEqual(conf["issuer"], iss)
        self.assertEqual(iss, f"http://127.0.0.1:{self.server.port}")
        self.assertEqual(conf["jwks_uri"], iss + "/.well-known/jwks.json")
        self.assertIn("EdDSA", conf["id_token_signing_alg_values_supported"])

    def test_rotated_keys_keep_verifying_the_tokens_they_signed(self):
        # A fixed public URL keeps the issuer (and so old tokens) valid across restarts.
        server = self.new_server("--public-url", "https://agora.test")
        a = server.new_user()
        self.assertEqual(jwt_parts(a.access)[1]["iss"], "https://agora.test")
        self.assertEqual(server.request("GET", "/.well-known/openid-configuration").body["issuer"],
                         "https://agora.test")
        old_kid = jwt_parts(a.access)[0]["kid"]
        server.proc.send_signal(15)
        self.assertEqual(server.proc.wait(timeout=20), 0)
        cmd = ["keys", "rotate", "--data-dir", str(server.data_dir)]
        if server.database_url:
            cmd += ["--database-url", server.database_url]
        rotate = run_agora(*cmd)
        self.assertEqual(rotate.returncode, 0, rotate.stdout + rotate.stderr)
        new_kid = rotate.stdout.strip()
        self.assertTrue(new_kid)
        self.assertNotEqual(new_kid, old_kid)
        server.restart()
        kids = [k["kid"] for k in server.request("GET", "/.well-known/jwks.json").body["keys"]]
        self.assertIn(old_kid, kids)
        self.assertIn(new_kid, kids)
        # The token signed before the rotation still works; new ones use the new key.
        self.assertEqual(server.request("GET", "/v1/me", headers=a.auth()).body["id"], a.id)
        self.assertEqual(jwt_parts(server.login(a.email).body["access_token"])[0]["kid"], new_kid)

    # -- operations on this store ------------------------------------------------------------

    def test_readyz_checks_the_database(self):
        r = self.server.request("GET", "/readyz")
        body = self.assertJson(r, 200)
        self.assertEqual(body["status"], "ready")
        self.assertTrue(body["checks"])
        self.assertEqual(set(body["checks"].values()), {"ok"})

    def test_events_are_relayed_from_the_outbox(self):
        self.server.new_user()

        def pending():
            m = re.search(r'^agora_outbox_pending_events\{service="identity"\} (\S+)$', self.server.metrics(), re.M)
            self.assertIsNotNone(m, "no agora_outbox_pending_events gauge")
            return float(m.group(1)) == 0

        deadline = time.monotonic() + 10
        while not pending():
            self.assertLess(time.monotonic(), deadline, "the outbox did not drain")
            time.sleep(0.05)

    def test_sigterm_exits_cleanly_and_data_survives_a_restart(self):
        server = self.new_server()
        email = unique_email("durable")
        server.register(email)
        kid = jwt_parts(server.login(email).body["access_token"])[0]["kid"]
        self.assertEqual(server.restart(), 0)
        tokens = server.login(email).body
        self.assertEqual(server.request("GET", "/v1/me", headers=bearer(tokens["access_token"])).body["email"], email)
        # The signing key is kept in the data folder, not made anew.
        self.assertEqual(jwt_parts(tokens["access_token"])[0]["kid"], kid)
        self.assertEqual(server.register(email, expect=None).status, 409)


class IdentityOnSqlite(IdentityFlows, unittest.TestCase):
    database = "sqlite"


@unittest.skipUnless(pg_url(), PG_SKIP)
class IdentityOnPostgres(IdentityFlows, unittest.TestCase):
    database = "postgres"

    def test_a_lost_database_answers_503_and_reveals_nothing_about_it(self):
        server = self.new_server()
        email = unique_email("outage")
        server.register(email)
        name, url = server.pg_name, server.database_url
        drop_pg_database(name)
        server.pg_name = None
        r = server.request("GET", "/readyz")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.body["status"], "not ready")
        self.assertIn("unavailable", r.body["checks"].values())
        self.assertEqual(server.request("GET", "/healthz").status, 200)  # alive, just not ready
        port = urllib.parse.urlsplit(url).port
        for r in (server.login(email, expect=None), server.register(unique_email(), expect=None),
                  server.request("POST", "/v1/auth/refresh", {"refresh_token": "x" * 43})):
            with self.subTest(r=r):
                self.assertProblem(r, 503)
                for secret in (name, "PostgreSQL", "postgres", "127.0.0.1", str(port)):
                    self.assertNotIn(secret.lower(), r.raw.decode().lower(), "the answer describes the database")
        self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
