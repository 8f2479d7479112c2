"""Load test of Bazaar's shop flow: browse, view a product, order and pay.

Run through `infra/load.sh`, which builds and starts a local server on a loopback port,
seeds a catalogue (products named from WORDS below, with plenty of stock) and runs this file
headless. Against another server that already has products:

    python3 -m locust -f infra/locustfile.py --headless -u 20 -r 2 -t 60s \
        --host http://127.0.0.1:3000

Each simulated user registers (Argon2id: spawn users slowly), adds an address, then loops
over weighted tasks: list products (5), view one (3), place an order and pay for it (1).
After paying it polls the order until it is `paid`; the time from the 202 to `paid` is
reported as the pseudo-request `ASYNC pay->paid`. Any unexpected status, including a 409
"not enough stock", is a failure whose message carries the status and the start of the body.

Environment: LOAD_WAIT_MIN / LOAD_WAIT_MAX (seconds between tasks, default 0.5 / 1.5),
LOAD_PAID_TIMEOUT (seconds to wait for `paid`, default 15), LOAD_SUMMARY_JSON (a file to
write the final statistics to, see write_summary).
"""

import json
import os
import random
import time
import uuid

from locust import FastHttpUser, between, events, task
from locust.stats import StatsEntry

API = "/api/v1"

# The words of the seeded product names (infra/load.sh uses the same lists); a search for
# one of them finds some products.
COLOURS = ["red", "blue", "green", "black", "white"]
THINGS = ["shirt", "shoe", "lamp", "mug", "book", "chair", "scarf", "kettle", "clock", "bag"]

CARD = {
    "method": "card",
    "card_number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2030,
    "cvc": "123",
}

WAIT_MIN = float(os.environ.get("LOAD_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LOAD_WAIT_MAX", "1.5"))
PAID_TIMEOUT = float(os.environ.get("LOAD_PAID_TIMEOUT", "15"))
POLL_EVERY = 0.25


def body_start(response, limit=200):
    text = response.text or ""
    text = " ".join(text.split())
    return text[:limit]


class Shopper(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def expect(self, method, path, status, name, **kwargs):
        """One request that must answer `status`; returns the JSON body or None."""
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            if response.status_code != status:
                response.failure(f"{response.status_code} {body_start(response)}")
                return None
            try:
                return response.json()
            except ValueError:
                response.failure(f"{response.status_code} not JSON: {body_start(response)}")
                return None

    def auth(self, **extra):
        return {"Authorization": f"Bearer {self.token}", **extra}

    def on_start(self):
        self.token = None
        self.address_id = None
        self.product_ids = []
        tag = uuid.uuid4().hex[:20]
        password = f"load-{uuid.uuid4().hex}"
        registered = self.expect(
            "POST",
            f"{API}/users/register",
            201,
            "/users/register",
            json={
                "email": f"load-{tag}@example.com",
                "username": f"load{tag}",
                "password": password,
                "password_confirm": password,
            },
        )
        if registered is None:
            return
        self.token = registered["access_token"]
        address = self.expect(
            "POST",
            f"{API}/users/me/addresses",
            201,
            "/users/me/addresses",
            headers=self.auth(),
            json={
                "line1": "1 Load Test Way",
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701",
                "country": "US",
            },
        )
        if address is not None:
            self.address_id = address["id"]
        self.list_products(f"{API}/products?limit=100", "/products")

    def list_products(self, path, name):
        page = self.expect("GET", path, 200, name)
        if page is not None:
            ids = [item["id"] for item in page.get("items", [])]
            if ids:
                self.product_ids = sorted(set(self.product_ids) | set(ids))

    @task(5)
    def browse(self):
        roll = random.random()
        if roll < 0.6:
            self.list_products(f"{API}/products?limit=20", "/products")
        elif roll < 0.8:
            self.list_products(f"{API}/products?limit=20&sort=price_asc", "/products?sort=price_asc")
        else:
            word = random.choice(COLOURS + THINGS)
            self.list_products(f"{API}/products?limit=20&q={word}", "/products?q=<word>")

    @task(3)
    def view_product(self):
        if self.product_ids:
            product_id = random.choice(self.product_ids)
            self.expect("GET", f"{API}/products/{product_id}", 200, "/products/{id}")

    @task(1)
    def order_and_pay(self):
        if not (self.token and self.address_id and self.product_ids):
            return
        order = self.expect(
            "POST",
            f"{API}/orders",
            201,
            "/orders",
            headers=self.auth(**{"Idempotency-Key": str(uuid.uuid4())}),
            json={
                "items": [{"product_id": random.choice(self.product_ids), "quantity": 1}],
                "shipping_address_id": self.address_id,
            },
        )
        if order is None:
            return
        order_id = order["id"]
        if order.get("status") != "pending_payment":
            self.report_paid(0, f"new order has status {order.get('status')!r}")
            return
        accepted = self.expect(
            "POST",
            f"{API}/orders/{order_id}/pay",
            202,
            "/orders/{id}/pay",
            headers=self.auth(**{"Idempotency-Key": str(uuid.uuid4())}),
            json=CARD,
        )
        if accepted is None:
            return
        started = time.monotonic()
        status = None
        while time.monotonic() - started < PAID_TIMEOUT:
            time.sleep(POLL_EVERY)
            current = self.expect(
                "GET", f"{API}/orders/{order_id}", 200, "/orders/{id}", headers=self.auth()
            )
            status = current and current.get("status")
            if status in ("paid", "payment_failed", "cancelled"):
                break
        elapsed_ms = (time.monotonic() - started) * 1000
        if status == "paid":
            self.report_paid(elapsed_ms, None)
        else:
            self.report_paid(elapsed_ms, f"order {order_id} is {status!r} after {elapsed_ms:.0f} ms")

    def report_paid(self, elapsed_ms, error):
        self.environment.events.request.fire(
            request_type="ASYNC",
            name="pay->paid",
            response_time=elapsed_ms,
            response_length=0,
            exception=RuntimeError(error) if error else None,
            context={},
        )



@events.quitting.add_listener
def write_summary(environment, **_kwargs):
    """Writes the final statistics to LOAD_SUMMARY_JSON, if set (infra/load.sh prints them).

    Locust's CSV files are rewritten once a second and may miss the last second; this runs
    after the users have stopped. Besides locust's "Aggregated" row, which also counts the
    ASYNC pseudo-requests (much longer), it gives the totals of the HTTP requests alone.
    """
    path = os.environ.get("LOAD_SUMMARY_JSON")
    stats = environment.stats
    if not path or stats is None:
        return

    def row(entry, kind, name):
        return {
            "type": kind,
            "name": name,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            "p50": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
            "p99": entry.get_response_time_percentile(0.99) if entry.num_requests else None,
            "max": entry.max_response_time if entry.num_requests else None,
        }

    http = StatsEntry(stats, "HTTP requests", "")
    for entry in stats.entries.values():
        if entry.method != "ASYNC":
            http.extend(entry)
    runner = environment.runner
    summary = {
        "endpoints": [
            row(entry, entry.method, entry.name)
            for entry in sorted(stats.entries.values(), key=lambda e: (e.method == "ASYNC", e.name))
        ],
        "http": row(http, "HTTP", "all HTTP requests"),
        "all": row(stats.total, "", "Aggregated (HTTP + ASYNC)"),
        "failures": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in sorted(stats.errors.values(), key=lambda e: -e.occurrences)
        ],
        "exceptions": [
            {"count": e["count"], "message": e["msg"]}
            for e in (runner.exceptions.values() if runner else [])
        ],
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(summary, out)
