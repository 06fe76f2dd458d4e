"""Harness for the black-box HTTP tests: runs the real `agora` executable.

`Server` starts `$AGORA_BIN serve --listen 127.0.0.1:0 --data-dir <fresh temp
dir>`, reads the bound port back from the first JSON log line whose "msg" is
"listening", and talks HTTP to it with http.client. Nothing waits a fixed
time: every wait polls against a deadline.

With `database="postgres"` the server gets a fresh PostgreSQL database of its
own (`CREATE DATABASE agora_bb_<random>` on $AGORA_TEST_DATABASE_URL, dropped
again by stop()), so tests never see each other's rows.

Environment:
  AGORA_BIN                the agora executable (default build/release/agora;
                           relative paths are taken from the repository root)
  AGORA_TEST_DATABASE_URL  postgresql://... of a throwaway server whose user may
                           create databases (scripts/lib/pg.sh provides one);
                           unset: the PostgreSQL tests are skipped
"""

import base64
import glob
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20
REQUEST_TIMEOUT_S = 30
PG_URL_ENV = "AGORA_TEST_DATABASE_URL"

# A password every policy accepts: long, not common, not derived from a name.
GOOD_PASSWORD = "violet-Otter-harbour-42"
# A valid IBAN (the standard German example) for seller onboarding.
TEST_IBAN = "DE89370400440532013000"


def agora_bin():
    p = Path(os.environ.get("AGORA_BIN") or "build/release/agora")
    if not p.is_absolute():
        p = ROOT / p
    if not os.access(p, os.X_OK):
        raise RuntimeError(f"{p} is missing or not executable; build it (scripts/build) or set AGORA_BIN")
    return str(p)


def pg_url():
    """$AGORA_TEST_DATABASE_URL, or None."""
    return os.environ.get(PG_URL_ENV) or None


def unique_email(tag="user"):
    return f"{tag}.{secrets.token_hex(6)}@example.com"


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Polls `predicate` until it returns a truthy value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- PostgreSQL ---------------------------------------------------------------

def _psql(url, sql):
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}) on {sql!r}: {proc.stderr.strip()}")
    return proc.stdout


def create_pg_database():
    """Creates an empty database on $AGORA_TEST_DATABASE_URL; returns (name, url)."""
    base = pg_url()
    if base is None:
        raise RuntimeError(f"{PG_URL_ENV} is not set")
    name = "agora_bb_" + secrets.token_hex(6)
    _psql(base, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(base)
    return name, urllib.parse.urlunsplit(parts._replace(path="/" + name))


def drop_pg_database(name):
    _psql(pg_url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- HTTP ---------------------------------------------------------------------

class Response:
    """An HTTP answer. Unpacks as (status, headers, body).

    `headers` is an http.client.HTTPMessage (case-insensitive get/get_all);
    `body` is the parsed JSON for JSON and problem+json answers, else text;
    `raw` is the body's bytes.
    """

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        ctype = (headers.get("Content-Type") or "").lower()
        if raw and "json" in ctype:
            self.body = json.loads(raw.decode("utf-8"))
        else:
            self.body = raw.decode("utf-8", errors="replace")

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:300]!r}>"


def bearer(token):
    return {"Authorization": "Bearer " + token}


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token):
    """(header, claims) of a compact JWS, without checking anything."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def make_jwt(header, claims, sign):
    """A compact JWS: `sign(signing_input_bytes) -> signature bytes`."""
    signing_input = b64url(json.dumps(header, separators=(",", ":"))) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")))
    return signing_input + "." + b64url(sign(signing_input.encode()))


class HttpReader:
    """Reads HTTP/1.1 responses one by one from a raw socket, keeping bytes
    that belong to the next response (pipelining, 100 Continue)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read(self, timeout=REQUEST_TIMEOUT_S):
        """(status, headers with lower-case names, body bytes), or None if the
        peer closed before a whole response head arrived."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                break
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def read_http_response(sock, timeout=REQUEST_TIMEOUT_S):
    """Reads one response from a raw socket on which no other response is
    pending; see HttpReader."""
    return HttpReader(sock).read(timeout)


class Server:
    """One `agora serve` process with its own data folder (and database).

    Server(*extra_args, database="sqlite"|"postgres", env={...}, listen=...,
    start=True). `listen=None` leaves --listen out (so a config file or the
    environment can set it). Use as a context manager or call stop().
    """

    def __init__(self, *extra_args, database="sqlite", env=None, listen=HOST + ":0", start=True, tls_ca=None,
                 data_dir_flag=True):
        self.bin = agora_bin()
        self.extra_args = list(extra_args)
        self.database = database
        self.env_overrides = dict(env or {})
        self.listen = listen
        self.tls_ca = tls_ca
        self.data_dir_flag = data_dir_flag  # False: the data folder comes from the environment or a config file
        self.tmp = Path(tempfile.mkdtemp(prefix="agora-bb-"))
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "stdout.log"
        self.err_path = self.tmp / "stderr.log"
        self.proc = None
        self.port = None
        self.listening = None  # the parsed "listening" log line
        self.pg_name = None
        self.database_url = None
        self.exit_code = None
        self._ssl = None
        if database == "postgres":
            self.pg_name, self.database_url = create_pg_database()
        elif database != "sqlite":
            raise ValueError(database)
        if start:
            self.start()

    # -- process ---------------------------------------------------------------

    def env(self):
        # The tests decide every AGORA_* setting; none leaks in from outside.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
        env.update(self.env_overrides)
        return env

    def command(self):
        cmd = [self.bin, "serve"]
        if self.data_dir_flag:
            cmd += ["--data-dir", str(self.data_dir)]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        return cmd + self.extra_args

    def start(self):
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=self.env(), cwd=self.tmp)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            line = self._find_log("listening")
            if line is not None:
                self.listening = line
                self.port = int(line["port"])
                return self
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                output = self.output()
                self._cleanup()
                raise RuntimeError(f"agora serve exited with {self.exit_code} before listening:\n{output}")
            if time.monotonic() >= deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(f"agora serve did not log 'listening' within {START_TIMEOUT_S}s:\n{output}")
            time.sleep(0.01)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Signals the server, waits for it to exit (deadline), cleans up and
        returns the exit code."""
        if self.proc is not None and self.exit_code is None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    self.exit_code = "killed"
            if self.exit_code is None:
                self.exit_code = self.proc.returncode
        self._cleanup()
        return self.exit_code

    def restart(self):
        """Stops the process (SIGTERM) and starts it again on the same data
        folder and database; returns the exit code of the stop. The port
        (and so the token issuer) changes."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                code = "killed"
        self.exit_code = None
        self.port = None
        self.log_path.rename(self.log_path.with_suffix(".log.1"))
        self.start()
        return code

    def _cleanup(self):
        self._final_output = self.output()
        if self.pg_name is not None:
            drop_pg_database(self.pg_name)
            self.pg_name = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def output(self):
        """Everything the server wrote so far (stdout, then stderr); after
        stop(), what it wrote in all."""
        if getattr(self, "_final_output", None) is not None:
            return self._final_output
        text = ""
        for p in (self.log_path, self.err_path):
            try:
                text += p.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def log_lines(self):
        """The JSON log lines written so far."""
        lines = []
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return lines
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass  # a line still being written
        return lines

    def _find_log(self, msg):
        for line in self.log_lines():
            if line.get("msg") == msg:
                return line
        return None

    def wait_for_log(self, predicate, timeout=10, what="a log line"):
        """The first log line matching `predicate`, polling until `timeout`."""
        def find():
            for line in self.log_lines():
                if predicate(line):
                    return line
            return None
        return wait_until(find, timeout, what=what)

    # -- HTTP --------------------------------------------------------------------

    @property
    def tls(self):
        return self.tls_ca is not None

    def ssl_context(self):
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.tls_ca))
        return self._ssl

    def connection(self, timeout=REQUEST_TIMEOUT_S):
        if self.tls:
            return http.client.HTTPSConnection(HOST, self.port, timeout=timeout, context=self.ssl_context())
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, conn=None):
        """Sends one request. `body` is sent as JSON; `raw` (bytes or str) is
        sent as it is. A JSON Content-Type is added for either unless
        `headers` names one. Uses `conn` if given (keep-alive), else a fresh
        connection. Returns a Response (unpacks as status, headers, body)."""
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        if data is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        own = conn is None
        c = self.connection() if own else conn
        try:
            try:
                c.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer early (413, 431) and stop reading the
                # body; its answer can still be read.
                pass
            r = c.getresponse()
            raw_body = r.read()
            return Response(r.status, r.headers, raw_body)
        finally:
            if own:
                c.close()

    def raw_socket(self, timeout=REQUEST_TIMEOUT_S):
        s = socket.create_connection((HOST, self.port), timeout=timeout)
        if self.tls:
            s = self.ssl_context().wrap_socket(s, server_hostname=HOST)
        return s

    def raw_exchange(self, data, timeout=REQUEST_TIMEOUT_S):
        """Writes `data` (bytes) on a new connection and reads one response:
        (status, headers with lower-case names, body bytes), or None."""
        with self.raw_socket(timeout) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading it all
            try:
                return read_http_response(s, timeout)
            except ConnectionResetError:
                return None

    def metrics(self):
        status, _, text = self.request("GET", "/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}")
        return text

    # -- the development mailbox ---------------------------------------------------

    def mailbox(self):
        """Every mail in <data-dir>/mailbox, oldest first, as dicts."""
        mails = []
        for path in sorted(glob.glob(str(self.data_dir / "mailbox" / "*.json"))):
            with open(path, encoding="utf-8") as f:
                mail = json.load(f)
            mail["_file"] = os.path.basename(path)
            mails.append(mail)
        mails.sort(key=lambda m: (m.get("sent_at", ""), m["_file"]))
        return mails

    def mails_to(self, email, purpose=None):
        return [m for m in self.mailbox() if m.get("to") == email and (purpose is None or m.get("purpose") == purpose)]

    def wait_for_mail(self, email, purpose, count=1, timeout=10):
        """The newest mail of `purpose` to `email` once there are `count`."""
        mails = wait_until(lambda: (lambda ms: ms if len(ms) >= count else None)(self.mails_to(email, purpose)),
                           timeout, what=f"{count} {purpose} mail(s) to {email}")
        return mails[-1]

    # -- accounts ----------------------------------------------------------------

    def register(self, email=None, password=GOOD_PASSWORD, display_name="Test User", expect=201):
        email = email or unique_email()
        r = self.request("POST", "/v1/auth/register",
                         {"email": email, "password": password, "display_name": display_name})
        if expect is not None and r.status != expect:
            raise AssertionError(f"register {email}: expected {expect}, got {r!r}")
        return r

    def login(self, email, password=GOOD_PASSWORD, expect=200):
        r = self.request("POST", "/v1/auth/login", {"email": email, "password": password})
        if expect is not None and r.status != expect:
            raise AssertionError(f"login {email}: expected {expect}, got {r!r}")
        return r

    def new_user(self, password=GOOD_PASSWORD, display_name="Test User", tag="user"):
        """Registers and logs in a fresh buyer: an Account."""
        email = unique_email(tag)
        user = self.register(email, password, display_name).body
        tokens = self.login(email, password).body
        return Account(email, password, user, tokens)

    def admin_create(self, email, password=GOOD_PASSWORD, extra=()):
        """Runs `agora admin create` on this server's data; CompletedProcess."""
        cmd = [self.bin, "admin", "create", "--data-dir", str(self.data_dir), "--email", email, "--password-stdin"]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += list(extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
        return subprocess.run(cmd, input=password + "\n", capture_output=True, text=True, timeout=60, env=env)

    def new_seller(self, password=GOOD_PASSWORD, display_name="Test Seller", shop_name=None, tag="seller"):
        """Registers a fresh account, onboards it as a seller (POST /v1/me/seller)
        and refreshes, so the returned Account's access token carries the
        `seller` role; `user` is the account as onboarding returned it."""
        account = self.new_user(password, display_name, tag)
        body = {"display_name": shop_name or f"{display_name}'s shop",
                "payout": {"account_holder": display_name, "iban": TEST_IBAN}}
        r = self.request("POST", "/v1/me/seller", body, headers=account.auth())
        if r.status != 200:
            raise AssertionError(f"seller onboarding of {account.email}: expected 200, got {r!r}")
        account.user = r.body
        r = self.request("POST", "/v1/auth/refresh", {"refresh_token": account.refresh})
        if r.status != 200:
            raise AssertionError(f"refresh after onboarding {account.email}: expected 200, got {r!r}")
        account.tokens = r.body
        if "seller" not in jwt_parts(account.access)[1].get("roles", []):
            raise AssertionError(f"the refreshed token of {account.email} has no seller role")
        return account

    def new_admin(self, password=GOOD_PASSWORD):
        email = unique_email("admin")
        proc = self.admin_create(email, password)
        if proc.returncode != 0:
            raise AssertionError(f"agora admin create failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        tokens = self.login(email, password).body
        return Account(email, password, {"id": proc.stdout.strip()}, tokens)


class Account:
    def __init__(self, email, password, user, tokens):
        self.email = email
        self.password = password
        self.user = user
        self.tokens = tokens

    @property
    def id(self):
        return self.user["id"]

    @property
    def access(self):
        return self.tokens["access_token"]

    @property
    def refresh(self):
        return self.tokens["refresh_token"]

    def auth(self):
        return bearer(self.access)


def new_seller(server, **kwargs):
    """A logged-in Account with the `seller` role on `server` (Server.new_seller)."""
    return server.new_seller(**kwargs)


def run_agora(*args, env=None, timeout=60, input=None):
    """Runs `agora ARGS` to completion with a clean AGORA_* environment."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    e.update(env or {})
    return subprocess.run([agora_bin(), *args], capture_output=True, text=True, timeout=timeout, env=e,
                          input=input)


def free_port_holder():
    """A listening socket on 127.0.0.1 with a system-chosen port (to collide with)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    s.listen(1)
    return s


class ProblemAssertions:
    """unittest.TestCase mixin for RFC 9457 answers."""

    def assertProblem(self, response, status, type_suffix=None, fields=None):
        """`response` is a `status` problem+json with type, title and status;
        `type_suffix` ends its type; `fields` are among its errors[].field."""
        self.assertEqual(response.status, status, response)
        ctype = response.headers.get("Content-Type") or ""
        self.assertEqual(ctype.split(";")[0].strip(), "application/problem+json", response)
        body = response.body
        self.assertIsInstance(body, dict, response)
        self.assertIsInstance(body.get("type"), str, response)
        self.assertTrue(body["type"], response)
        self.assertIsInstance(body.get("title"), str, response)
        self.assertTrue(body["title"], response)
        self.assertEqual(body.get("status"), status, response)
        if type_suffix is not None:
            self.assertTrue(body["type"].endswith(type_suffix), f"type {body['type']!r}, wanted *{type_suffix}")
        if fields is not None:
            named = {e.get("field") for e in body.get("errors", [])}
            for f in fields:
                self.assertIn(f, named, f"no error for field {f!r} in {body}")
        return body

    def assertJson(self, response, status):
        self.assertEqual(response.status, status, response)
        ctype = response.headers.get("Content-Type") or ""
        self.assertEqual(ctype.split(";")[0].strip(), "application/json", response)
        return response.body


# --- catalog --------------------------------------------------------------------

def etag(version):
    """The ETag of a listing version: "v<version>" with its quotes."""
    return f'"v{version}"'


def with_query(path, **params):
    """`path?k=v&…` with the params that are not None (in the order given)."""
    params = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def unique_word(prefix="zq"):
    """A made-up lower-case word no other test uses. Consonant-vowel pairs
    ending in "k", so no stemmer rule shortens it."""
    consonants, vowels = "bcdfghjklmnprtvz", "aeiou"
    pairs = "".join(secrets.choice(consonants) + secrets.choice(vowels) for _ in range(4))
    return prefix + pairs + "k"


_DEFAULT = object()


def listing_body(category, title=_DEFAULT, **override):
    """A valid create body in `category`; `override` replaces (or, with None,
    removes) fields, `category_id` and `title` included."""
    override.setdefault("category_id", category)
    if title is not _DEFAULT:
        override["title"] = title
    body = {"title": f"Test listing {secrets.token_hex(4)}",
            "description": "A listing made by the black-box tests.",
            "price": {"amount": 1999, "currency": "EUR"},
            "quantity": 3,
            "category_id": category,
            "condition": "new",
            "attributes": {"brand": "Acme"},
            "images": ["https://img.example.com/1.jpg"],
            "shipping": [{"method": "standard", "price": {"amount": 500, "currency": "EUR"},
                          "min_days": 2, "max_days": 5}]}
    for k, v in override.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def category_tree(server):
    r = server.request("GET", "/v1/categories")
    if r.status != 200:
        raise AssertionError(f"GET /v1/categories: {r!r}")
    return r.body["data"]


def walk_categories(nodes, path=()):
    """Yields (node, [ancestors' names…, its name]) depth first."""
    for node in nodes:
        names = list(path) + [node["name"]]
        yield node, names
        yield from walk_categories(node.get("children") or [], names)


def leaf_categories(server):
    """Categories of the tree without children, deepest paths first."""
    leaves = [(n, p) for n, p in walk_categories(category_tree(server)) if not n.get("children")]
    leaves.sort(key=lambda np: -len(np[1]))
    if not leaves:
        raise AssertionError("the category tree is empty")
    return [n for n, _ in leaves]


def create_listing(server, seller, category_id, publish=False, conn=None, **override):
    """Creates (and optionally publishes) a listing; returns it as last answered."""
    r = server.request("POST", "/v1/products", listing_body(category_id, **override), headers=seller.auth(), conn=conn)
    if r.status != 201:
        raise AssertionError(f"create listing: expected 201, got {r!r}")
    listing = r.body
    if publish:
        r = server.request("POST", f"/v1/products/{listing['id']}/publish", headers=seller.auth(), conn=conn)
        if r.status != 200:
            raise AssertionError(f"publish {listing['id']}: expected 200, got {r!r}")
        listing = r.body
    return listing


def collect_pages(server, path, headers=None, max_pages=100, **params):
    """Follows next_cursor from `path` with `params`; returns (items, pages)."""
    items, pages, cursor = [], 0, None
    while True:
        r = server.request("GET", with_query(path, **params, cursor=cursor), headers=headers)
        if r.status != 200:
            raise AssertionError(f"GET {path} page {pages + 1}: {r!r}")
        items += r.body["data"]
        pages += 1
        cursor = r.body["next_cursor"]
        if cursor is None:
            return items, pages
        if pages >= max_pages:
            raise AssertionError(f"GET {path}: more than {max_pages} pages")
