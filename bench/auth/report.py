#!/usr/bin/env python3
"""report.py - the auth benchmark's markdown report from run's cells.jsonl (standard library only).

Each cell: one contender, one client count, one round. Per (contender, clients) the best round by logins/s is
kept and the range shown (the machine is shared; other load comes and goes). Ratios are chainmail / ldap in
the same run: logins/s (higher is better) and p99 (lower is better). LDAP operations per login are slapd's
SRCH and BIND log lines during the cell divided by the logins sent (warm-up included).

Usage: report.py CELLS.jsonl [--users N]
"""

import argparse
import json
import os
import platform
from collections import defaultdict


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cells")
    p.add_argument("--users", type=int, default=10000)
    args = p.parse_args()
    cells = defaultdict(list)
    with open(args.cells) as f:
        for line in f:
            c = json.loads(line)
            cells[(c["contender"], c["load"]["clients"])].append(c)
    best = {k: max(v, key=lambda c: c["load"]["logins_per_s"]) for k, v in cells.items()}
    clients = sorted({k[1] for k in cells})
    out = ["# bench/auth: chainmail passdb vs Dovecot's LDAP passdb (auth_bind = yes)", ""]
    out.append(
        f"{args.users} users, AUTH PLAIN over Dovecot's auth-client socket (as Postfix's smtpd), auth cache off, "
        f"every login a different user. Machine: {os.cpu_count()} CPUs, {platform.platform()}; "
        f"load average at the end {open('/proc/loadavg').read().split()[0]}."
    )
    out += ["", "| clients | contender | logins/s (range) | p50 ms | p99 ms | searches/login | binds/login | failed |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in clients:
        for contender in ("chainmail", "ldap"):
            if (contender, c) not in best:
                continue
            b = best[(contender, c)]
            load = b["load"]
            rates = [x["load"]["logins_per_s"] for x in cells[(contender, c)]]
            sent = max(load["all_requests"], 1)
            out.append(
                f"| {c} | {contender} | {load['logins_per_s']:.0f} ({min(rates):.0f}-{max(rates):.0f}) | "
                f"{load['p50_ms']:.2f} | {load['p99_ms']:.2f} | {b['searches'] / sent:.2f} | {b['binds'] / sent:.2f} | "
                f"{load['failed']} |"
            )
    out += ["", "| clients | logins/s ratio chainmail/ldap (target >= 1.5 at 16) | p99 ratio (target <= 1) |",
            "|---:|---:|---:|"]
    for c in clients:
        if ("chainmail", c) in best and ("ldap", c) in best:
            a, b = best[("chainmail", c)]["load"], best[("ldap", c)]["load"]
            rate = a["logins_per_s"] / b["logins_per_s"] if b["logins_per_s"] else float("inf")
            p99 = a["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("inf")
            out.append(f"| {c} | {rate:.2f}x | {p99:.2f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
