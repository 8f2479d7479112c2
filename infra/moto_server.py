#!/usr/bin/env python3
"""moto's server (`python3 -m moto.server`), with each request handled atomically.

DynamoDB runs every request (a TransactWriteItems included) atomically: two transactions that
claim the same key cannot both succeed. moto's server handles requests on concurrent threads
without that isolation, so under concurrency two conditional transactions can both pass their
checks. Serialising requests restores DynamoDB's semantics, which the concurrency tests of the
AWS adapters rely on; connections are still accepted concurrently.

Usage: python3 infra/moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            # Consume the response inside the lock: the work may be lazy.
            return list(app(environ, start_response))

    return handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True)


if __name__ == "__main__":
    main()
