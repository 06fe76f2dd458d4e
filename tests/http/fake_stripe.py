"""A stand-in for Stripe's API on loopback, answering with Stripe's documented
request and response shapes (form-encoded requests, JSON objects, 402
card_error with the payment intent, Idempotency-Key replay), for the tests of
the `stripe` payment provider. It records every request it saw.

Test tokens, as Stripe's: tok_visa succeeds, tok_chargeDeclined is declined
(card_declined), tok_chargeDeclinedInsufficientFunds (insufficient_funds).
"""

import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_KEY = "sk_test_agora_fake"
DECLINES = {"tok_chargeDeclined": "card_declined", "tok_chargeDeclinedInsufficientFunds": "insufficient_funds"}


class FakeStripe:
    def __init__(self):
        self.intents = {}
        self.refunds = []
        self.transfers = []
        self.requests = []  # (method, path, form dict, headers dict)
        self.saved = {}  # idempotency key -> (status, body)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- Stripe's objects -------------------------------------------------------

    def intent_json(self, pi, expand_charge=False):
        out = {k: v for k, v in pi.items() if k != "_refunded"}
        if expand_charge:
            out["latest_charge"] = {"id": "ch_" + pi["id"][3:], "object": "charge", "amount": pi["amount"],
                                    "amount_captured": pi["amount_received"], "amount_refunded": pi["_refunded"],
                                    "currency": pi["currency"], "payment_intent": pi["id"], "paid": True,
                                    "captured": True, "refunded": pi["_refunded"] == pi["amount_received"]}
        return out

    def create_intent(self, form):
        token = form.get("payment_method_data[card][token]", "")
        amount = int(form["amount"])
        pi = {"id": "pi_" + secrets.token_hex(12), "object": "payment_intent", "amount": amount,
              "amount_capturable": 0, "amount_received": amount, "currency": form["currency"],
              "capture_method": form.get("capture_method", "automatic"), "status": "succeeded",
              "metadata": {"payment_id": form.get("metadata[payment_id]", "")}, "last_payment_error": None,
              "next_action": None, "created": int(time.time()), "livemode": False, "_refunded": 0}
        if not token.startswith("tok_"):
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "param": "payment_method_data[card][token]",
                                   "message": f"No such token: '{token}'"}}
        if token in DECLINES:
            pi.update(status="requires_payment_method", amount_received=0,
                      last_payment_error={"type": "card_error", "code": "card_declined",
                                          "decline_code": DECLINES[token], "message": "Your card was declined."})
            self.intents[pi["id"]] = pi
            return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": DECLINES[token],
                                   "message": "Your card was declined.", "payment_intent": self.intent_json(pi)}}
        self.intents[pi["id"]] = pi
        return 200, self.intent_json(pi)

    def refund(self, form):
        pi = self.intents.get(form.get("payment_intent", ""))
        if pi is None:
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "param": "payment_intent", "message": "No such payment_intent"}}
        amount = int(form.get("amount", pi["amount_received"] - pi["_refunded"]))
        if amount > pi["amount_received"] - pi["_refunded"]:
            return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
                                   "message": "Refund amount is greater than unrefunded amount on charge"}}
        pi["_refunded"] += amount
        r = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount, "currency": pi["currency"],
             "payment_intent": pi["id"], "status": "succeeded", "created": int(time.time())}
        self.refunds.append(r)
        return 200, r

    def transfer(self, form):
        t = {"id": "tr_" + secrets.token_hex(12), "object": "transfer", "amount": int(form["amount"]),
             "currency": form["currency"], "destination": form["destination"], "created": int(time.time())}
        self.transfers.append(t)
        return 200, t


class _Handler(BaseHTTPRequestHandler):
    fake = None

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Request-Id", "req_" + secrets.token_hex(6))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method):
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        url = urllib.parse.urlsplit(self.path)
        with fake.lock:
            fake.requests.append((method, url.path, form, dict(self.headers)))
            if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                return self._answer(401, {"error": {"type": "invalid_request_error",
                                                    "message": "Invalid API Key provided"}})
            key = self.headers.get("Idempotency-Key")
            if method == "POST" and key and key in fake.saved:
                return self._answer(*fake.saved[key])
            if method == "POST" and url.path == "/v1/payment_intents":
                answer = fake.create_intent(form)
            elif method == "GET" and url.path.startswith("/v1/payment_intents/"):
                pi = fake.intents.get(url.path.rsplit("/", 1)[1])
                answer = (200, fake.intent_json(pi, "latest_charge" in url.query)) if pi else \
                    (404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                     "message": "No such payment_intent"}})
            elif method == "POST" and url.path == "/v1/refunds":
                answer = fake.refund(form)
            elif method == "POST" and url.path == "/v1/transfers":
                answer = fake.transfer(form)
            else:
                answer = (404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})
            if method == "POST" and key:
                fake.saved[key] = answer
        return self._answer(*answer)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")
