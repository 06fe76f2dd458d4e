"""Server behaviour: HTTP/1.1, operations endpoints, middleware, limits,
timeouts, graceful shutdown, TLS, configuration and the command line.

These run on SQLite only; the store makes no difference to them (the identity
and bad-input suites run on both stores).
"""

import http.client
import json
import re
import shutil
import secrets
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from tests.http.agora import (GOOD_PASSWORD, HOST, HttpReader, ProblemAssertions, Server, agora_bin, free_port_holder,
                              read_http_response, run_agora, unique_email, wait_until)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def recv_until_closed(sock, timeout):
    """True if the peer closes `sock` (EOF or reset) within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True


def connect_refused(port):
    """True if connecting to 127.0.0.1:port is refused."""
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


class ServerBehaviour(ProblemAssertions, unittest.TestCase):
    """Tests that share one default server (they do not interfere)."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code!r} on SIGTERM:\n{cls.server.output()[-4000:]}")

    # -- HTTP/1.1 ----------------------------------------------------------------------

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = self.server.connection()
        try:
            local = None
            for i in range(6):
                path = ("/healthz", "/v1/me", "/nowhere")[i % 3]
                r = self.server.request("GET", path, conn=conn)
                self.assertEqual(r.status, (200, 401, 404)[i % 3], r)
                self.assertNotEqual((r.headers.get("Connection") or "").lower(), "close")
                self.assertIsNotNone(conn.sock, "the server closed the connection")
                if local is None:
                    local = conn.sock.getsockname()
                self.assertEqual(conn.sock.getsockname(), local, "a new connection was opened")
        finally:
            conn.close()

    def test_pipelined_requests_are_answered_in_order(self):
        ids = [f"pipe-{i}-{secrets.token_hex(4)}" for i in range(3)]
        data = b"".join(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: %s\r\n\r\n" % i.encode()
                        for i in ids)
        with self.server.raw_socket() as s:
            s.sendall(data)
            reader = HttpReader(s)
            for expected in ids:
                status, headers, body = reader.read()
                self.assertEqual(status, 200)
                self.assertEqual(headers["x-request-id"], expected)
                self.assertEqual(json.loads(body), {"status": "ok"})

    def test_http_1_0_without_keep_alive_closes(self):
        with self.server.raw_socket() as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            status, headers, body = read_http_response(s)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), {"status": "ok"})
            self.assertTrue(recv_until_closed(s, 5), "HTTP/1.0 connection left open")

    def test_head_is_served_where_get_is(self):
        r = self.server.request("HEAD", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.raw, b"")
        self.assertEqual(r.headers.get("Content-Length"), str(len(b'{"status":"ok"}')))

    # -- operations endpoints -----------------------------------------------------------

    def test_healthz(self):
        r = self.server.request("GET", "/healthz")
        self.assertEqual(self.assertJson(r, 200), {"status": "ok"})

    def test_readyz_reports_its_checks(self):
        body = self.assertJson(self.server.request("GET", "/readyz"), 200)
        self.assertEqual(body["status"], "ready")
        self.assertIsInstance(body["checks"], dict)
        self.assertTrue(body["checks"])
        self.assertTrue(all(v == "ok" for v in body["checks"].values()), body)

    def counter(self, text, route, method, status):
        m = re.search(r'^agora_http_requests_total\{route="%s",method="%s",status="%d"\} (\d+)$'
                      % (re.escape(route), method, status), text, re.M)
        return int(m.group(1)) if m else 0

    def test_metrics_count_requests_per_route_with_latency_histograms(self):
        before = self.server.metrics()
        for _ in range(3):
            self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.assertEqual(self.server.request("GET", "/v1/me").status, 401)
        self.assertEqual(self.server.request("GET", "/no/such/route").status, 404)
        r = self.server.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r.headers.get("Content-Type"))
        self.assertIn("version=0.0.4", r.headers.get("Content-Type"))
        after = r.body
        self.assertEqual(self.counter(after, "/healthz", "GET", 200) - self.counter(before, "/healthz", "GET", 200), 3)
        self.assertEqual(self.counter(after, "/v1/me", "GET", 401) - self.counter(before, "/v1/me", "GET", 401), 1)
        self.assertEqual(self.counter(after, "unmatched", "", 404) - self.counter(before, "unmatched", "", 404), 1)
        self.assertIn("# TYPE agora_http_requests_total counter", after)
        self.assertIn("# TYPE agora_http_request_duration_seconds histogram", after)
        # The /healthz histogram: cumulative buckets ending in +Inf == count.
        series = r'agora_http_request_duration_seconds_%s\{route="/healthz",method="GET"%s\} (\S+)'
        buckets = [(le, float(v)) for le, v in
                   re.findall(series % ("bucket", r',le="([^"]+)"'), after)]
        self.assertTrue(buckets, "no /healthz histogram buckets")
        self.assertEqual(buckets[-1][0], "+Inf")
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values), "buckets are not cumulative")
        count = float(re.search(series % ("count", ""), after).group(1))
        self.assertGreaterEqual(count, 3)
        self.assertEqual(values[-1], count)
        self.assertGreater(float(re.search(series % ("sum", ""), after).group(1)), 0)
        # Every sample line is well formed.
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
                            r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? [-+0-9.eEInfa]+$')
        for line in after.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, sample)

    # -- request ids and trace context -------------------------------------------------------

    def test_request_id_is_echoed_or_generated(self):
        r = self.server.request("GET", "/healthz", headers={"X-Request-Id": "abc-123_X.y"})
        self.assertEqual(r.headers.get("X-Request-Id"), "abc-123_X.y")
        first = self.server.request("GET", "/healthz").headers.get("X-Request-Id")
        second = self.server.request("GET", "/nowhere").headers.get("X-Request-Id")
        self.assertRegex(first, HEX32)
        self.assertRegex(second, HEX32)
        self.assertNotEqual(first, second)
        # Ids that could smuggle text into logs are replaced.
        for bad in ("has spaces", "x" * 200, "<script>", "a\u00e9"):
            with self.subTest(bad=bad):
                hdr = bad.encode("utf-8").decode("latin-1")
                got = self.server.request("GET", "/healthz", headers={"X-Request-Id": hdr}).headers["X-Request-Id"]
                self.assertRegex(got, HEX32)

    def test_traceparent_keeps_the_trace_and_starts_a_new_span(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        rid = "trace-" + secrets.token_hex(6)
        r = self.server.request("GET", "/healthz", headers={"traceparent": f"00-{trace}-{parent}-01",
                                                            "X-Request-Id": rid})
        m = TRACEPARENT.match(r.headers.get("traceparent") or "")
        self.assertIsNotNone(m, r.headers.get("traceparent"))
        self.assertEqual(m.group(1), trace)
        self.assertNotEqual(m.group(2), parent)
        self.assertNotEqual(m.group(2), "0" * 16)
        # The access log line carries both.
        line = self.server.wait_for_log(lambda l: l.get("request_id") == rid, what="the access log line")
        self.assertEqual(line.get("trace_id"), trace)
        self.assertEqual(line.get("status"), 200)
        self.assertEqual(line.get("route"), "/healthz")
        # Without (or with a broken) traceparent, a new trace starts.
        for sent in (None, f"00-{'0' * 32}-{parent}-01", f"ff-{trace}-{parent}-01", "garbage",
                     f"00-{trace.upper()}-{parent}-01"):
            with self.subTest(sent=sent):
                headers = {"traceparent": sent} if sent else {}
                got = TRACEPARENT.match(self.server.request("GET", "/healthz", headers=headers).headers["traceparent"])
                self.assertIsNotNone(got)
                self.assertNotEqual(got.group(1), trace)
                self.assertNotEqual(got.group(1), "0" * 32)

    def test_security_headers_on_every_answer(self):
        answers = [self.server.request("GET", "/healthz"), self.server.request("GET", "/v1/me"),
                   self.server.request("GET", "/nowhere"), self.server.request("DELETE", "/healthz"),
                   self.server.request("POST", "/v1/auth/login", raw="{")]
        for r in answers:
            with self.subTest(status=r.status):
                for name, value in SECURITY_HEADERS.items():
                    self.assertEqual(r.headers.get(name), value, name)
                self.assertIn("default-src 'none'", r.headers.get("Content-Security-Policy") or "")
                self.assertEqual(r.headers.get("Cache-Control"), "no-store")
                self.assertIsNone(r.headers.get("Strict-Transport-Security"), "HSTS over plain HTTP")
        # Public documents may be cached.
        jwks = self.server.request("GET", "/.well-known/jwks.json")
        self.assertIn("public", jwks.headers.get("Cache-Control"))
        self.assertEqual(jwks.headers.get("X-Content-Type-Options"), "nosniff")

    def test_cors_is_off_unless_configured(self):
        r = self.server.request("OPTIONS", "/v1/auth/login",
                                headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
        self.assertProblem(r, 403)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))
        r = self.server.request("GET", "/healthz", headers={"Origin": "https://shop.example"})
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))

    # -- limits ------------------------------------------------------------------------

    def test_header_limit_on_an_authenticated_route_is_431(self):
        for extra in (b"X-Long: " + b"a" * (16 * 1024 + 1) + b"\r\n",
                      b"".join(b"X-Header-%05d: v\r\n" % i for i in range(2000))):
            with self.subTest(size=len(extra)):
                r = self.server.raw_exchange(b"GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                             b"Authorization: Bearer x.y.z\r\n" + extra + b"\r\n")
                self.assertIsNotNone(r, "closed without an answer")
                self.assertEqual(r[0], 431, r)
                self.assertEqual(r[1]["content-type"], "application/problem+json")
                self.assertEqual(json.loads(r[2])["status"], 431)
                self.assertTrue(r[1].get("x-request-id"))
        # Headers just under the limit are fine.
        r = self.server.request("GET", "/healthz", headers={"X-Pad": "a" * (15 * 1024)})
        self.assertEqual(r.status, 200)

    def test_default_body_limit_is_one_mebibyte(self):
        limit = 1024 * 1024
        body = '{"refresh_token":"%s"}' % ("x" * 43)
        at = body + " " * (limit - len(body))
        r = self.server.request("POST", "/v1/auth/refresh", raw=at)
        self.assertProblem(r, 401)  # read and parsed: only the token is wrong
        r = self.server.request("POST", "/v1/auth/refresh", raw=at + " ")
        body = self.assertProblem(r, 413)
        self.assertIn(str(limit), body.get("detail", ""))
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_deep_nesting_within_the_body_limit_does_not_hurt_the_server(self):
        depth = 400_000
        r = self.server.request("POST", "/v1/auth/login", raw="[" * depth + "]" * depth)
        self.assertProblem(r, 400)
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)


class Cors(ProblemAssertions, unittest.TestCase):
    ORIGIN = "https://shop.example"

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--cors-origin", cls.ORIGIN)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def preflight(self, origin, method="POST", path="/v1/auth/login"):
        return self.server.request("OPTIONS", path, headers={
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type"})

    def test_preflight_from_the_allowed_origin(self):
        r = self.preflight(self.ORIGIN)
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), self.ORIGIN)
        methods = {m.strip() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")}
        self.assertTrue({"GET", "POST", "PATCH"} <= methods, methods)
        allowed = r.headers.get("Access-Control-Allow-Headers", "").lower()
        self.assertIn("authorization", allowed)
        self.assertIn("content-type", allowed)
        self.assertIn("Origin", r.headers.get("Vary", ""))
        self.assertNotEqual(r.headers.get("Access-Control-Allow-Origin"), "*")

    def test_preflight_from_another_origin_is_refused(self):
        for origin in ("https://evil.example", "https://shop.example.evil.example", "http://shop.example", "null"):
            with self.subTest(origin=origin):
                r = self.preflight(origin)
                self.assertProblem(r, 403)
                self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))

    def test_actual_requests_carry_cors_headers_for_the_allowed_origin_only(self):
        r = self.server.request("GET", "/v1/me", headers={"Origin": self.ORIGIN})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), self.ORIGIN)
        self.assertIn("X-Request-Id", r.headers.get("Access-Control-Expose-Headers", ""))
        r = self.server.request("GET", "/healthz", headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))

    def test_origins_from_the_environment_are_a_comma_separated_list(self):
        with Server(env={"AGORA_CORS_ORIGINS": "https://a.example,https://b.example"}) as server:
            for origin, allowed in (("https://a.example", True), ("https://b.example", True),
                                    ("https://a.example,https://b.example", False), (self.ORIGIN, False)):
                with self.subTest(origin=origin):
                    r = server.request("OPTIONS", "/v1/me", headers={"Origin": origin,
                                                                     "Access-Control-Request-Method": "GET"})
                    self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), origin if allowed else None)
                    self.assertEqual(r.status in (200, 204), allowed, r)


class ClientAddress(unittest.TestCase):
    """X-Forwarded-For is believed only from --trusted-proxy peers."""

    def client_ip_logged_for(self, server, request_id, xff):
        server.request("GET", "/healthz", headers={"X-Request-Id": request_id, "X-Forwarded-For": xff})
        line = server.wait_for_log(lambda l: l.get("msg") == "request" and l.get("request_id") == request_id,
                                   what="the access log line")
        return line["client_ip"]

    def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy(self):
        with Server() as server:
            self.assertEqual(self.client_ip_logged_for(server, "xff-untrusted", "198.51.100.7"), "127.0.0.1")
        with Server("--trusted-proxy", "127.0.0.1") as server:
            self.assertEqual(self.client_ip_logged_for(server, "xff-trusted", "1.2.3.4, 198.51.100.7"),
                             "198.51.100.7")
            self.assertEqual(self.client_ip_logged_for(server, "xff-garbage", "not-an-address"), "127.0.0.1")

    def test_login_throttling_counts_the_forwarded_client(self):
        with Server("--trusted-proxy", "127.0.0.1", "--login-max-failures", "1") as server:
            # One account per attempt, so only the per-client count (4 free) grows.
            def attempt(client):
                return server.request("POST", "/v1/auth/login",
                                      {"email": unique_email("spray"), "password": "wrong password!"},
                                      headers={"X-Forwarded-For": client})
            statuses = [attempt("198.51.100.7").status for _ in range(6)]
            self.assertEqual(statuses[:4], [401] * 4)
            self.assertIn(429, statuses[4:])
            self.assertEqual(attempt("198.51.100.8").status, 401)  # another client is not throttled


class BoundedPools(ProblemAssertions, unittest.TestCase):
    def test_a_full_cpu_pool_answers_503_and_other_requests_go_on(self):
        import concurrent.futures
        with Server("--cpu-threads", "1", "--max-pending-jobs", "2") as server:
            email = server.register(unique_email("burst")).body["email"]

            def login(_):
                return server.request("POST", "/v1/auth/login",
                                      {"email": email, "password": GOOD_PASSWORD})
            with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
                pending = [pool.submit(login, i) for i in range(12)]
                started = time.monotonic()
                health = server.request("GET", "/healthz")
                health_s = time.monotonic() - started
                results = [f.result() for f in pending]
            self.assertEqual(health.status, 200)
            self.assertLess(health_s, 1.0, "hashing must not stall the I/O threads")
            busy = [r for r in results if r.status == 503]
            self.assertTrue(busy, [r.status for r in results])
            for r in busy:
                self.assertProblem(r, 503)
                self.assertEqual(r.body["type"], "/problems/overloaded")
                self.assertEqual(r.headers.get("Retry-After"), "1")
            self.assertTrue(all(r.status in (200, 503) for r in results), [r.status for r in results])
            self.assertTrue(any(r.status == 200 for r in results))


class Timeouts(unittest.TestCase):
    def test_idle_keep_alive_connections_are_closed(self):
        with Server("--idle-timeout", "1") as server:
            with server.raw_socket() as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_http_response(s)[0], 200)
                start = time.monotonic()
                self.assertTrue(recv_until_closed(s, 5), "idle connection not closed")
                self.assertGreater(time.monotonic() - start, 0.5)

    def test_read_timeout_applies_to_a_half_sent_request_head(self):
        with Server("--read-timeout", "1", "--idle-timeout", "30") as server:
            with server.raw_socket() as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
                self.assertTrue(recv_until_closed(s, 5), "a half-sent request kept the connection")
            self.assertEqual(server.request("GET", "/healthz").status, 200)

    def test_connections_beyond_the_limit_are_closed(self):
        with Server("--max-connections", "2") as server:
            held = [server.raw_socket() for _ in range(2)]
            try:
                for s in held:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(read_http_response(s)[0], 200)
                with server.raw_socket() as extra:
                    try:
                        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        answer = read_http_response(extra, timeout=5)
                    except (ConnectionResetError, BrokenPipeError):
                        answer = None
                    self.assertIsNone(answer, "a connection over the limit was served")
            finally:
                held[0].close()
            # A slot frees up once a connection ends.
            def served():
                try:
                    return server.request("GET", "/healthz").status == 200
                except (ConnectionError, http.client.HTTPException):
                    return False
            wait_until(served, 10, interval=0.05, what="a freed connection slot")
            for s in held[1:]:
                s.close()


class GracefulShutdown(unittest.TestCase):
    def test_sigterm_closes_idle_connections_finishes_in_flight_requests_and_exits_0(self):
        server = Server("--shutdown-grace", "10")
        self.addCleanup(server.stop)
        idle = server.raw_socket()            # served once, now idle in keep-alive
        self.addCleanup(idle.close)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_http_response(idle)[0], 200)
        silent = server.raw_socket()          # connected, nothing sent yet
        self.addCleanup(silent.close)
        busy = server.raw_socket()            # a registration in flight
        self.addCleanup(busy.close)
        email = unique_email("inflight")
        body = json.dumps({"email": email, "password": "violet-Otter-harbour-42", "display_name": "X"}).encode()
        busy.sendall(b"POST /v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        # The 100 Continue proves the server has read the head: the request is in flight.
        busy_reader = HttpReader(busy)
        status, _, _ = busy_reader.read()
        self.assertEqual(status, 100)

        server.proc.send_signal(signal.SIGTERM)
        self.assertTrue(recv_until_closed(idle, 5), "the idle keep-alive connection stayed open")
        self.assertTrue(recv_until_closed(silent, 5), "the silent connection stayed open")
        wait_until(lambda: connect_refused(server.port), 5, what="new connections to be refused")
        self.assertIsNone(server.proc.poll(), "exited with a request in flight")

        busy.sendall(body)
        status, headers, answer = busy_reader.read()
        self.assertEqual(status, 201, answer)
        self.assertEqual(json.loads(answer)["email"], email)
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertEqual(server.proc.wait(timeout=10), 0, server.output())
        server.exit_code = 0
        messages = [l.get("msg") for l in server.log_lines()]
        self.assertIn("shutting down", messages)
        self.assertEqual(messages[-1], "stopped")

    def test_shutdown_gives_up_on_stuck_requests_after_the_grace_period(self):
        server = Server("--shutdown-grace", "1", "--read-timeout", "60")
        self.addCleanup(server.stop)
        stuck = server.raw_socket()
        self.addCleanup(stuck.close)
        stuck.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: 50\r\n\r\n")
        self.assertEqual(read_http_response(stuck)[0], 100)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        code = server.proc.wait(timeout=10)
        server.exit_code = code
        self.assertEqual(code, 0, server.output())
        self.assertLess(time.monotonic() - start, 5)
        self.assertGreater(time.monotonic() - start, 0.5, "did not wait for the in-flight request")


class Tls(ProblemAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Path(tempfile.mkdtemp(prefix="agora-bb-tls-"))
        cls.cert, cls.key = cls.certs / "cert.pem", cls.certs / "key.pem"
        proc = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                               "-nodes", "-keyout", str(cls.key), "-out", str(cls.cert), "-days", "2",
                               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"openssl failed: {proc.stderr}")
        cls.server = Server("--tls-cert", str(cls.cert), "--tls-key", str(cls.key), tls_ca=cls.cert)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"the TLS server exited with {code!r}:\n{cls.server.output()[-4000:]}")

    def test_https_serves_with_hsts(self):
        self.assertIs(self.server.listening.get("tls"), True)
        r = self.server.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertTrue((r.headers.get("Strict-Transport-Security") or "").startswith("max-age="))
        self.assertProblem(self.server.request("GET", "/nowhere"), 404)

    def test_accounts_work_over_tls_and_the_issuer_is_https(self):
        account = self.server.new_user()
        me = self.server.request("GET", "/v1/me", headers=account.auth())
        self.assertEqual(me.status, 200)
        conf = self.server.request("GET", "/.well-known/openid-configuration").body
        self.assertEqual(conf["issuer"], f"https://127.0.0.1:{self.server.port}")

    def test_keep_alive_over_tls(self):
        conn = self.server.connection()
        try:
            for _ in range(3):
                self.assertEqual(self.server.request("GET", "/healthz", conn=conn).status, 200)
        finally:
            conn.close()

    def test_plain_http_to_the_tls_port_gets_no_http_answer(self):
        with socket.create_connection((HOST, self.server.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(10)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            self.assertFalse(data.startswith(b"HTTP/"), data[:100])
        # The server is unharmed.
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_a_client_that_does_not_trust_the_certificate_fails(self):
        ctx = ssl.create_default_context()  # system roots only
        with socket.create_connection((HOST, self.server.port), timeout=10) as s:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(s, server_hostname=HOST)

    def test_missing_or_half_tls_settings_stop_start_up_with_a_clear_message(self):
        with tempfile.TemporaryDirectory() as d:
            for args, words in (((("--tls-cert", str(self.cert))), ("key",)),
                                (("--tls-cert", d + "/missing.pem", "--tls-key", str(self.key)), ("certificate",)),
                                (("--tls-cert", str(self.key), "--tls-key", str(self.cert)), ("certificate",))):
                with self.subTest(args=args):
                    proc = run_agora("serve", "--listen", "127.0.0.1:0", "--data-dir", d + "/data", *args, timeout=30)
                    self.assertNotEqual(proc.returncode, 0)
                    out = (proc.stdout + proc.stderr).lower()
                    self.assertIn("tls", out)
                    for w in words:
                        self.assertIn(w, out)
                    self.assertNotIn('"msg":"listening"', proc.stdout)


class Configuration(unittest.TestCase):
    """Flags over AGORA_* environment variables over a TOML --config file."""

    def write_config(self, text):
        d = Path(tempfile.mkdtemp(prefix="agora-bb-conf-"))
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        path = d / "agora.toml"
        path.write_text(text)
        return path

    def body_limit(self, server):
        """Finds the body limit in effect by probing around 4 KiB, 8 KiB and 16 KiB."""
        base = '{"refresh_token":"%s"}' % ("x" * 43)
        allowed = []
        for size in (3000, 6000, 12000, 20000):
            r = server.request("POST", "/v1/auth/refresh", raw=base + " " * (size - len(base)))
            self.assertIn(r.status, (401, 413), r)
            allowed.append(r.status == 401)
            if r.status == 413:
                m = re.search(r"(\d+) bytes", r.body.get("detail", ""))
                detail_limit = int(m.group(1)) if m else None
                break
        else:
            detail_limit = None
        return allowed, detail_limit

    def start(self, *args, env=None, listen="127.0.0.1:0"):
        server = Server(*args, env=env, listen=listen)
        self.addCleanup(server.stop)
        return server

    def test_file_alone(self):
        conf = self.write_config('listen = "127.0.0.1:0"\nmax-body-bytes = 4096\n')
        server = self.start("--config", str(conf), listen=None)
        self.assertEqual(self.body_limit(server), ([True, False], 4096))

    def test_environment_over_file(self):
        conf = self.write_config('listen = "not-an-address"\nmax-body-bytes = 4096\n')
        server = self.start("--config", str(conf), listen=None,
                            env={"AGORA_MAX_BODY_BYTES": "8192", "AGORA_LISTEN": "127.0.0.1:0"})
        self.assertEqual(self.body_limit(server), ([True, True, False], 8192))

    def test_flag_over_environment_over_file(self):
        conf = self.write_config('max-body-bytes = 4096\n')
        server = self.start("--config", str(conf), "--max-body-bytes", "16384",
                            env={"AGORA_MAX_BODY_BYTES": "8192", "AGORA_LISTEN": "nonsense"})
        self.assertEqual(self.body_limit(server), ([True, True, True, False], 16384))

    def test_config_file_named_by_the_environment(self):
        conf = self.write_config('max-body-bytes = 8192\n')
        server = self.start(env={"AGORA_CONFIG": str(conf)})
        self.assertEqual(self.body_limit(server), ([True, True, False], 8192))

    def test_data_dir_from_the_environment_and_flag_over_it(self):
        server = Server(start=False, data_dir_flag=False)
        self.addCleanup(server.stop)
        server.env_overrides["AGORA_DATA_DIR"] = str(server.data_dir)
        server.start()
        self.assertEqual(server.listening.get("data_dir"), str(server.data_dir))
        self.assertTrue((server.data_dir / "keys").is_dir())
        blocker = server.tmp / "a-file"
        blocker.write_text("not a folder")
        other = self.start(env={"AGORA_DATA_DIR": str(blocker / "data")})
        self.assertEqual(other.listening.get("data_dir"), str(other.data_dir))

    def test_unknown_or_invalid_settings_stop_start_up_with_a_clear_message(self):
        with tempfile.TemporaryDirectory() as d:
            conf = Path(d) / "bad.toml"
            conf.write_text('listen = "127.0.0.1:0"\nmax-body-bytez = 4096\n')
            cases = [(("--config", str(conf)), {}, "max-body-bytez"),
                     (("--config", str(Path(d) / "missing.toml")), {}, "missing.toml"),
                     ((), {"AGORA_MAX_BODY_BYTES": "lots"}, "max-body-bytes"),
                     (("--max-body-bytes", "10"), {}, "max-body-bytes"),
                     (("--no-such-flag",), {}, "no-such-flag")]
            for args, env, words in cases:
                with self.subTest(args=args, env=env):
                    proc = run_agora("serve", "--listen", "127.0.0.1:0", "--data-dir", d + "/data", *args, env=env,
                                     timeout=30)
                    self.assertNotEqual(proc.returncode, 0)
                    self.assertIn(words, proc.stdout + proc.stderr)
                    self.assertNotIn('"msg":"listening"', proc.stdout)


class CommandLine(unittest.TestCase):
    def test_help_documents_every_environment_setting(self):
        top = run_agora("--help")
        self.assertEqual(top.returncode, 0, top.stderr)
        for sub in ("serve", "admin", "keys", "routes", "seed-demo", "search", "ledger"):
            self.assertIn(sub, top.stdout)
        serve = run_agora("serve", "--help")
        self.assertEqual(serve.returncode, 0, serve.stderr)
        for name in ("AGORA_LISTEN", "AGORA_DATA_DIR", "AGORA_DATABASE_URL", "AGORA_CONFIG"):
            self.assertIn(name, serve.stdout)
        # Every option of serve names its environment variable.
        for line in serve.stdout.splitlines():
            m = re.match(r"^\s+(--[a-z][a-z0-9-]*)", line)
            if m and m.group(1) != "--help":
                self.assertRegex(line, r"\(Env:AGORA_[A-Z0-9_]+\)", f"{m.group(1)} has no environment variable")
        # Every AGORA_* name the executable knows is documented in some help.
        helps = top.stdout + serve.stdout
        for cmd in (("admin", "create"), ("keys", "rotate"), ("routes",), ("seed-demo",), ("search", "reindex"),
                    ("ledger", "verify")):
            helps += run_agora(*cmd, "--help").stdout
        known = set(re.findall(rb"AGORA_[A-Z0-9_]+", Path(agora_bin()).read_bytes()))
        self.assertTrue(known)
        for name in sorted(known):
            self.assertIn(name.decode(), helps, f"{name.decode()} is read but documented in no --help")

    def test_listen_must_be_host_and_port(self):
        with tempfile.TemporaryDirectory() as d:
            for listen in ("nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", "999.1.2.3:80",
                           "localhost-ish:80"):
                with self.subTest(listen=listen):
                    proc = run_agora("serve", "--listen", listen, "--data-dir", d, timeout=30)
                    self.assertNotEqual(proc.returncode, 0)
                    out = proc.stdout + proc.stderr
                    self.assertIn(listen.split(":")[0], out)  # names what is wrong
                    self.assertNotIn('"msg":"listening"', out)

    def test_a_second_server_on_a_taken_port_fails_to_start(self):
        with Server() as first:
            with tempfile.TemporaryDirectory() as d:
                proc = run_agora("serve", "--listen", f"127.0.0.1:{first.port}", "--data-dir", d, timeout=30)
            self.assertNotEqual(proc.returncode, 0)
            out = proc.stdout + proc.stderr
            self.assertIn(f"127.0.0.1:{first.port}", out)
            self.assertIn("in use", out.lower())
            self.assertEqual(first.request("GET", "/healthz").status, 200)
        holder = free_port_holder()
        try:
            with tempfile.TemporaryDirectory() as d:
                proc = run_agora("serve", "--listen", f"127.0.0.1:{holder.getsockname()[1]}", "--data-dir", d,
                                 timeout=30)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("in use", (proc.stdout + proc.stderr).lower())
        finally:
            holder.close()


if __name__ == "__main__":
    unittest.main()
