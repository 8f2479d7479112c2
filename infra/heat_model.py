#!/usr/bin/env python3
"""The partition-heat model: scales a recorded load to a target rate and prints, per key
pattern, the hottest key's rate against DynamoDB's per-partition limits.

    python3 infra/heat_model.py HEAT.json SUMMARY.json [--from UNIX] [--to UNIX]
        [--run-seconds S] [--shards 32] [--invoice-series 1] [--orders-per-second 10000]
        [--reads-per-second 50000] [--flash-share 0.2]

HEAT.json is what `bazaar serve` writes with BAZAAR_HEAT_FILE (reads and writes per partition
key and per item, per second; see server/src/heat.rs); SUMMARY.json is locust's summary from
infra/load.sh, which gives how many orders were placed and how many catalogue reads were made
in the whole run (`--run-seconds` long; the window read from HEAT.json may be shorter, to
leave out the seconds in which the shop was seeded). `infra/load.sh` with LOAD_HEAT=1 runs both and this model.

The model, per key pattern (ids, shard numbers and digests replaced by placeholders):
- A pattern whose keys are shop-wide (no id in them: `OUTBOX#<n>`, `LIST#ALL#NEWEST`,
  `COUNTER#INVOICE#2026`) carries load that grows with the shop's rate: its hottest key's
  average rate in the window (for the write-sharded partitions and the invoice series, the
  pattern's rate divided by the configured count, `--shards` and `--invoice-series`: a hash
  spreads the load evenly once there is enough of it) is multiplied by the scale (target orders/s over recorded
  orders/s for writes and order-path reads; target catalogue reads/s over recorded ones for
  catalogue reads).
- A pattern keyed by an entity (`ORDER#<id>`, `USER#<id>`) is written by that entity's own
  requests, whose rate does not grow with the shop's: its hottest key keeps its recorded
  peak. The exception is a product everyone buys at once: in the flash sale, a share of all
  orders (and of all catalogue reads) hits one product, so `PRODUCT#<id>` is scaled by that
  share times the per-order (per-read) rate of one product.
Limits: 1,000 writes and 3,000 reads per second per partition key; the goal is every key
below half of them. The transaction-conflict rate of the hottest written item is the chance
that another write lands within one transaction's window (25 ms): 1 - exp(-rate * 0.025).
"""

import argparse
import json
import math
import re
import sys
from collections import defaultdict

WRITE_LIMIT = 1000.0
READ_LIMIT = 3000.0
TRANSACTION_WINDOW = 0.025

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}")
HEX = re.compile(r"^[0-9a-f]{16,}$")
NUMBER = re.compile(r"^[0-9]+$")
# Patterns of catalogue partitions: read by shoppers browsing, scaled by the read rate.
SHARDED = ("OUTBOX#<n>", "EXPIRY#<n>", "ORDERS#<n>", "gsi1:USERS#<n>")
CATALOGUE = ("PRODUCT#", "LIST#", "TERM#", "CATEGORY#", "CATSLUG#", "SKU#", "gsi1:CATEGORIES")


def segment(part):
    """One `#`-separated part of a key, with what varies replaced by a placeholder."""
    if ULID.match(part):
        return "<id>" + ("-…" if len(part) > 26 else "")
    if HEX.match(part):
        return "<digest>"
    if NUMBER.match(part):
        return "<n>"
    if re.fullmatch(r"S[0-9]+", part):
        return "S<n>"
    if "@" in part:
        return "<email>"
    if re.fullmatch(r"[A-Z_:0-9a-z]*[A-Z_]+[A-Z_:0-9]*", part):
        return part
    return "<value>"


def pattern(key):
    return "#".join(segment(part) for part in key.split("#"))


def spread_over(name, args):
    """How many keys a hash spreads the pattern over: the write shards (shared/src/shards.rs)
    or the invoice series; none for any other pattern."""
    if name in SHARDED or (name.startswith("SUBSCRIBERS#") and name.endswith("#<n>")):
        return args.shards
    if name == "COUNTER#INVOICE#<n>#S<n>":
        return args.invoice_series
    return None


def per_entity(name):
    return any(p in name for p in ("<id>", "<email>", "<value>", "<digest>"))


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def window_of(heat, start, end):
    seconds = {int(s) for entry in heat["partitions"] for s in entry["seconds"]}
    lo = max(min(seconds), start) if start else min(seconds)
    hi = min(max(seconds), end) if end else max(seconds)
    return lo, hi


def counted(entry, lo, hi):
    """Total reads and writes of one key in the window, and its busiest second of each."""
    reads = writes = peak_reads = peak_writes = 0
    for second, (r, w) in entry["seconds"].items():
        if lo <= int(second) <= hi:
            reads, writes = reads + r, writes + w
            peak_reads, peak_writes = max(peak_reads, r), max(peak_writes, w)
    return reads, writes, peak_reads, peak_writes


def rates_from_summary(summary, seconds):
    orders = reads = 0
    for row in summary["endpoints"]:
        if row["type"] == "POST" and row["name"] == "/orders":
            orders += row["requests"] - row["failures"]
        if row["type"] == "GET" and row["name"].startswith("/products"):
            reads += row["requests"] - row["failures"]
    return orders / seconds, reads / seconds


def model(heat, summary, args):
    lo, hi = window_of(heat, args.start, args.end)
    seconds = hi - lo + 1
    orders_rate, reads_rate = rates_from_summary(summary, args.run_seconds or seconds)
    if orders_rate <= 0 or reads_rate <= 0:
        sys.exit("heat_model: the run placed no orders or read no catalogue in the window")
    order_scale = args.orders_per_second / orders_rate
    read_scale = args.reads_per_second / reads_rate
    patterns = defaultdict(lambda: {"keys": 0, "reads": 0, "writes": 0, "hot_r": 0.0, "hot_w": 0.0,
                                    "peak_r": 0, "peak_w": 0})
    for entry in heat["partitions"]:
        reads, writes, peak_r, peak_w = counted(entry, lo, hi)
        if reads == writes == 0:
            continue
        row = patterns[pattern(entry["key"])]
        row["keys"] += 1
        row["reads"] += reads
        row["writes"] += writes
        row["hot_r"] = max(row["hot_r"], reads / seconds)
        row["hot_w"] = max(row["hot_w"], writes / seconds)
        row["peak_r"] = max(row["peak_r"], peak_r)
        row["peak_w"] = max(row["peak_w"], peak_w)
    table = []
    for name, row in patterns.items():
        catalogue = name.startswith(CATALOGUE)
        if name.startswith("PRODUCT#<id>"):
            # The flash sale: a share of every order and every catalogue read on one product.
            # Product writes per order and reads per catalogue read, all products together,
            # all landing on the one product for that share of the traffic.
            writes = args.flash_share * args.orders_per_second * row["writes"] / seconds / orders_rate
            reads = args.flash_share * args.reads_per_second * row["reads"] / seconds / reads_rate
            basis = f"flash sale: {args.flash_share:.0%} of orders and reads on one product"
        elif per_entity(name):
            writes, reads = float(row["peak_w"]), float(row["peak_r"])
            basis = "one entity's own requests (recorded peak)"
        elif spread := spread_over(name, args):
            writes = row["writes"] / seconds / spread * order_scale
            reads = row["reads"] / seconds / spread * (read_scale if catalogue else order_scale)
            basis = f"spread over {spread} by hash, scaled"
        else:
            writes = row["hot_w"] * order_scale
            reads = row["hot_r"] * (read_scale if catalogue else order_scale)
            basis = f"{row['keys']} key(s), hottest scaled"
        table.append((name, writes, reads, basis))
    table.sort(key=lambda r: -max(r[1] / WRITE_LIMIT, r[2] / READ_LIMIT))
    return (lo, hi, orders_rate, reads_rate), table


def items_model(heat, args, window):
    """The hottest written item at the target rate, and its transaction-conflict rate."""
    lo, hi, orders_rate, _ = window
    seconds = hi - lo + 1
    hottest = (None, 0.0)
    product_writes = 0
    for entry in heat["items"]:
        if pattern(entry["key"].split("|")[0]).startswith("PRODUCT#<id>"):
            product_writes += counted(entry, lo, hi)[1]
    flash = args.flash_share * args.orders_per_second * product_writes / seconds / orders_rate
    for entry in heat["items"]:
        _, writes, _, peak_w = counted(entry, lo, hi)
        if writes == 0:
            continue
        name = pattern(entry["key"].split("|")[0])
        if name.startswith("PRODUCT#<id>"):
            rate = flash
        elif per_entity(name):
            rate = float(peak_w)
        else:
            rate = writes / seconds * args.orders_per_second / orders_rate
        if rate > hottest[1]:
            hottest = (entry["key"], rate)
    return hottest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("heat")
    parser.add_argument("summary")
    parser.add_argument("--from", dest="start", type=int, default=None)
    parser.add_argument("--to", dest="end", type=int, default=None)
    parser.add_argument("--run-seconds", type=float, default=None)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--invoice-series", type=int, default=1)
    parser.add_argument("--orders-per-second", type=float, default=10000)
    parser.add_argument("--reads-per-second", type=float, default=50000)
    parser.add_argument("--flash-share", type=float, default=0.2)
    args = parser.parse_args()
    heat, summary = load(args.heat), load(args.summary)
    window, table = model(heat, summary, args)
    lo, hi, orders_rate, reads_rate = window
    print(f"recorded {hi - lo + 1} s: {orders_rate:.1f} orders/s, {reads_rate:.1f} catalogue reads/s; "
          f"scaled to {args.orders_per_second:,.0f} orders/s and {args.reads_per_second:,.0f} reads/s")
    print()
    print("| Key pattern | Writes/s (hottest key) | of limit | Reads/s (hottest key) | of limit | Basis |")
    print("|---|---:|---:|---:|---:|---|")
    over = 0
    for name, writes, reads, basis in table:
        w_pct, r_pct = 100 * writes / WRITE_LIMIT, 100 * reads / READ_LIMIT
        flag = " **over half**" if max(w_pct, r_pct) > 50 else ""
        over += bool(flag)
        print(f"| `{name}` | {writes:,.0f} | {w_pct:.0f} %{flag if w_pct > 50 else ''} | "
              f"{reads:,.0f} | {r_pct:.0f} %{flag if r_pct > 50 else ''} | {basis} |")
    key, rate = items_model(heat, args, window)
    conflict = 1 - math.exp(-rate * TRANSACTION_WINDOW)
    print()
    print(f"hottest written item: `{pattern(key.split('|')[0]) if key else '-'}` at {rate:,.0f} writes/s; "
          f"transaction-conflict rate {100 * conflict:.1f} % (window {TRANSACTION_WINDOW * 1000:.0f} ms)")
    print(f"{over} key pattern(s) above half a partition's limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
