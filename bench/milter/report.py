#!/usr/bin/python3
"""report.py - the milter benchmark's markdown report (standard library only).

Usage: report.py OUT CORPUS_DIR > report.md        (bench/milter/run)

Reads OUT/machine.txt, OUT/raw/CONTENDER.TRANSPORT.CONNECTIONS.txt ("key value" lines from milter_load),
OUT/results/CONTENDER.TRANSPORT.jsonl (one reply record per message, from the verdict pass) and
CORPUS_DIR/labels.tsv and dataset.txt (gen_corpus.py). Writes one table per transport and concurrency, the
targets next to the measured values, and the verdict check: each contender's SPF, DKIM and DMARC results (from
the Authentication-Results headers it added) and its disposition, compared with the corpus's expected labels.
Every disagreement is counted and the first ones are listed.
"""

import json
import os
import re
import sys

# The issue's targets.
RATIO_A_UNIX = 2.0
RATIO_A_TCP = 10.0
RATIO_B = 4.0
CPU_MS_MAX = 0.5
P99_MS_MAX = 5.0
RSS_MB_MAX = 64.0
TARGET_CONNECTIONS = "8"

NAMES = {
    "chainmail": "chainmail-milter",
    "opendkim+opendmarc": "(a) OpenDKIM + OpenDMARC",
    "rspamd": "(b) rspamd (proxy, self-scan)",
    "null": "(d) null libmilter filter",
}
ORDER = ["chainmail", "opendkim+opendmarc", "rspamd", "null"]


def read_kv(path):
    values = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition(" ")
                if key:
                    values[key] = value
    except FileNotFoundError:
        pass
    return values


def num(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return float("nan")


def isnan(x):
    return x != x


def fmt(x, spec):
    return "n/a" if isnan(x) else format(x, spec)


def mark(ok):
    if ok is None:
        return "n/a"
    return "PASS ✅" if ok else "FAIL ❌"


def daemons_of(values):
    """Daemon names in a raw file (daemon_NAME_cpu_ms keys), in their order."""
    return [k[len("daemon_"):-len("_cpu_ms")] for k in values if k.startswith("daemon_") and k.endswith("_cpu_ms")]


def peak_rss_mb(values):
    """The contender's peak RSS: per daemon its largest process's VmHWM, summed over the chain."""
    total = 0.0
    names = daemons_of(values)
    for d in names:
        total += num(values, f"daemon_{d}_hwm_max_kb")
    return total / 1024 if names else float("nan")


def pss_mb(values):
    names = daemons_of(values)
    return sum(num(values, f"daemon_{d}_pss_kb") for d in names) / 1024 if names else float("nan")


# ------------------------------------------------------------------ verdicts
AR_RESULT = re.compile(r"\b(spf|dkim|dmarc)=([a-z]+)")


def verdicts(record):
    """(spf, dkim, dmarc) from the Authentication-Results headers a contender added; None where it said nothing."""
    found = {"spf": [], "dkim": [], "dmarc": []}
    for h in record.get("headers", []):
        # "milterN insert Name:value" / "milterN add Name:value" / "milterN change Name:value"
        _, _, rest = h.partition(" ")
        _, _, field = rest.partition(" ")
        name, _, value = field.partition(":")
        if name.strip().lower() != "authentication-results":
            continue
        for method, result in AR_RESULT.findall(value):
            found[method].append(result)
    dkim = found["dkim"]
    return (found["spf"][0] if found["spf"] else None,
            ("pass" if "pass" in dkim else dkim[0]) if dkim else None,
            found["dmarc"][0] if found["dmarc"] else None)


def expected_disposition(contender, label):
    fail = label["dmarc"] == "fail"
    if contender == "chainmail":
        if label["spf"] == "fail":
            return "reject@mail"
        if fail and label["policy"] == "reject":
            return "reject@eom"
        if fail and label["policy"] == "quarantine":
            return "quarantine@eom"
        return "accept"
    if contender in ("opendkim+opendmarc", "rspamd"):
        # OpenDMARC: RejectFailures true, HoldQuarantinedMessages false (the deployment's). rspamd: the dmarc
        # module's actions force reject for p=reject, add_header (accepted) for quarantine.
        return "reject@eom" if fail and label["policy"] == "reject" else "accept"
    return "accept"


def got_disposition(record):
    d = record["disposition"]
    return d if d == "accept" else f"{d}@{record['stage']}"


def check(contender, records, labels):
    """Counts per check: compared, disagreements; and the first disagreements as rows."""
    counts = {c: [0, 0, 0] for c in ("spf", "dkim", "dmarc", "disposition")}  # compared, disagree, unreported
    examples = []
    for r in records:
        label = labels.get(r["id"])
        if label is None:
            continue
        want = expected_disposition(contender, label)
        got = got_disposition(r)
        counts["disposition"][0] += 1
        if got != want:
            counts["disposition"][1] += 1
            examples.append((r["id"], label["kind"], "disposition", want, got + (f" ({r['code']})" if r["code"] else "")))
        if contender == "null":
            continue
        spf, dkim, dmarc = verdicts(r)
        if contender == "chainmail" and r["stage"] == "mail" and "5.7.23" in r.get("code", ""):
            spf = "fail"  # rejected for SPF at MAIL FROM: no header to read
        if dmarc is None and r["disposition"] == "reject" and "DMARC" in r.get("code", ""):
            dmarc = "fail"  # OpenDMARC rejects without adding its header; its reply names DMARC
        for name, value in (("spf", spf), ("dkim", dkim), ("dmarc", dmarc)):
            expect = label[name]
            if value is None:
                if expect == "none":
                    counts[name][0] += 1  # saying nothing about an unsigned message is "none"
                else:
                    counts[name][2] += 1
                continue
            counts[name][0] += 1
            if value != expect:
                counts[name][1] += 1
                examples.append((r["id"], label["kind"], name, expect, value))
    return counts, examples


def read_labels(corpus):
    labels = {}
    with open(os.path.join(corpus, "labels.tsv"), encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(head, line.rstrip("\n").split("\t")))
            labels[row["id"]] = row
    return labels


def read_records(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ report
def main():
    out_dir, corpus = sys.argv[1], sys.argv[2]
    machine = read_kv(os.path.join(out_dir, "machine.txt"))
    dataset = read_kv(os.path.join(corpus, "dataset.txt"))
    labels = read_labels(corpus)
    transports = machine.get("transports", "unix tcp").split()
    conns = machine.get("connections", "1 8 32").split()
    contenders = [c for c in ORDER if c in machine.get("contenders", "").split()]
    rounds = int(machine.get("rounds", "1"))
    # Each cell's best round by messages/s (its latency, CPU and memory from that round), and the range.
    raw, spread = {}, {}
    for c in contenders:
        for t in transports:
            for n in conns:
                runs = [read_kv(os.path.join(out_dir, "raw", f"{c}.{t}.{n}.r{r}.txt")) for r in range(1, rounds + 1)]
                runs = [v for v in runs if v]
                rates = [num(v, "msgs_per_s") for v in runs]
                raw[(c, t, n)] = max(runs, key=lambda v: num(v, "msgs_per_s")) if runs else {}
                spread[(c, t, n)] = (min(rates), max(rates)) if len(rates) > 1 else None

    out = []
    w = out.append
    w("# Milter benchmark: chainmail-milter vs OpenDKIM + OpenDMARC, rspamd and a null filter\n")
    w(f"Produced by `bench/milter/run{' --quick' if machine.get('mode') == 'quick' else ''}` "
      f"({machine.get('mode', '?')} mode, {machine.get('date', '?')}). The load driver (milter_load) speaks the "
      "milter protocol as Postfix 3.7 does (version 6, its action and event masks and macros, one milter "
      "connection per SMTP session, SMFIC_ABORT after each message, no TCP_NODELAY, writes flushed before each "
      "read); a chain gets the message after the previous milter's header edits, as cleanup(8) does.\n")
    if machine.get("chainmail_status", "measured") != "measured":
        w(f"> **chainmail-milter not measured**: {machine.get('chainmail_status')}.\n")

    w("## Machine and run\n")
    w("| | |\n|---|---|")
    w(f"| nproc | {machine.get('nproc', '?')} (load driver, DNS and daemons share them) |")
    w(f"| CPU | {machine.get('cpu_model', '?')} |")
    w(f"| load average (1/5/15 min) at start / end | {machine.get('load_at_start', '?')} / "
      f"{machine.get('load_at_end', '?')} |")
    w(f"| build | {machine.get('build_type', '?')} |")
    w(f"| packages | {machine.get('versions', '?')} |")
    w(f"| cells | {machine.get('cell_seconds', '?')} s measured after {machine.get('warmup_seconds', '?')} s "
      f"of the same load; connections {', '.join(conns)}; {rounds} round{'s' if rounds > 1 else ''} (each "
      f"restarting every daemon), best round per cell; wall time {machine.get('wall_seconds', '?')} s |")
    w("")

    w("## Corpus\n")
    w("| | |\n|---|---|")
    w(f"| messages | {dataset.get('messages', '?')} in {dataset.get('sessions', '?')} SMTP sessions (1-3 messages "
      f"each, seed {dataset.get('seed', '?')}) |")
    w(f"| sizes | {dataset.get('size_min', '?')} - {dataset.get('size_max', '?')} bytes, median "
      f"{dataset.get('size_median', '?')}, mean {dataset.get('size_mean', '?')}; text/plain, multipart/alternative, "
      "multipart/mixed with base64 attachments |")
    w(f"| kinds | {dataset.get('kinds', '?').replace(',', ', ').replace(':', ': ')} |")
    w("| signatures | one or two per message: rsa-sha256 (2048-bit) and ed25519-sha256, by the From domain and/or "
      "an ESP |")
    w(f"| DNS | unbound, authoritative local data only ({dataset.get('domains', '?')} sender domains: SPF with "
      "include/a/mx, DKIM keys, DMARC p=reject/quarantine/none, one domain under co.uk), every daemon pointed at "
      "it; the verdict pass fills each daemon's own cache before the timed cells |")
    w("")

    # ---------------------------------------------------------------- tables
    def ratio(a, b):
        return a / b if b and not isnan(a) and not isnan(b) and b > 0 else float("nan")

    for t in transports:
        for n in conns:
            w(f"## {('Unix socket' if t == 'unix' else 'TCP (127.0.0.1)')}, {n} connection{'s' if n != '1' else ''}\n")
            w("| contender | messages/s (range over rounds) | p50 ms | p99 ms | daemon CPU ms/msg | "
              "peak RSS MB (Pss now) | errors | "
              "chainmail / this | DNS server, driver CPU ms/msg |")
            w("|---|---|---|---|---|---|---|---|---|")
            cm = raw.get(("chainmail", t, n), {})
            for c in contenders:
                v = raw[(c, t, n)]
                if not v:
                    w(f"| {NAMES[c]} | not measured | | | | | | | |")
                    continue
                names = daemons_of(v)
                cpu = num(v, "cpu_ms_per_msg")
                cpu_text = fmt(cpu, ".3f")
                if len(names) > 1:
                    cpu_text += " (" + " + ".join(fmt(num(v, f"daemon_{d}_cpu_ms_per_msg"), ".3f") for d in names) + ")"
                r = ratio(num(cm, "msgs_per_s"), num(v, "msgs_per_s")) if c != "chainmail" else float("nan")
                rng = spread[(c, t, n)]
                rate = fmt(num(v, "msgs_per_s"), ",.0f") + (f" ({rng[0]:,.0f}-{rng[1]:,.0f})" if rng else "")
                w(f"| {NAMES[c]} | {rate} | {fmt(num(v, 'p50_ms'), '.2f')} | "
                  f"{fmt(num(v, 'p99_ms'), '.2f')} | {cpu_text} | {fmt(peak_rss_mb(v), '.1f')} "
                  f"({fmt(pss_mb(v), '.1f')}) | {v.get('errors', '?')} | "
                  f"{'' if c == 'chainmail' else (fmt(r, '.2f') + 'x' if not isnan(r) else 'n/a')} | "
                  f"{fmt(num(v, 'observed_unbound_cpu_ms_per_msg'), '.3f')}, {fmt(num(v, 'driver_cpu_ms_per_msg'), '.3f')} |")
            w("")

    # ---------------------------------------------------------------- targets
    w(f"## Targets (at {TARGET_CONNECTIONS} connections)\n")
    w("| target | measured | result |\n|---|---|---|")
    for t in transports:
        cm = raw.get(("chainmail", t, TARGET_CONNECTIONS), {})
        a = raw.get(("opendkim+opendmarc", t, TARGET_CONNECTIONS), {})
        b = raw.get(("rspamd", t, TARGET_CONNECTIONS), {})
        want_a = RATIO_A_UNIX if t == "unix" else RATIO_A_TCP
        ra = ratio(num(cm, "msgs_per_s"), num(a, "msgs_per_s"))
        rb = ratio(num(cm, "msgs_per_s"), num(b, "msgs_per_s"))
        w(f"| {t}: chainmail >= {want_a:g}x (a) | {fmt(num(cm, 'msgs_per_s'), ',.0f')}/s vs "
          f"{fmt(num(a, 'msgs_per_s'), ',.0f')}/s = {fmt(ra, '.3f')}x | {mark(None if isnan(ra) else ra >= want_a)} |")
        w(f"| {t}: chainmail >= {RATIO_B:g}x (b) | {fmt(num(cm, 'msgs_per_s'), ',.0f')}/s vs "
          f"{fmt(num(b, 'msgs_per_s'), ',.0f')}/s = {fmt(rb, '.3f')}x | {mark(None if isnan(rb) else rb >= RATIO_B)} |")
        cpu = num(cm, "cpu_ms_per_msg")
        p99 = num(cm, "p99_ms")
        w(f"| {t}: chainmail CPU <= {CPU_MS_MAX} ms/msg | {fmt(cpu, '.3f')} ms | "
          f"{mark(None if isnan(cpu) else cpu <= CPU_MS_MAX)} |")
        w(f"| {t}: chainmail p99 < {P99_MS_MAX:g} ms | {fmt(p99, '.2f')} ms | {mark(None if isnan(p99) else p99 < P99_MS_MAX)} |")
    rss = max((peak_rss_mb(raw[("chainmail", t, n)]) for t in transports for n in conns
               if raw.get(("chainmail", t, n))), default=float("nan"))
    w(f"| chainmail peak RSS < {RSS_MB_MAX:g} MB (whole run) | {fmt(rss, '.1f')} MB | "
      f"{mark(None if isnan(rss) else rss < RSS_MB_MAX)} |")
    w("")

    # ---------------------------------------------------------------- verdicts
    w("## Verdicts against the corpus labels\n")
    w("Each contender's verdict pass of the first round (every message once, 8 connections). SPF, DKIM and DMARC are read from the "
      "Authentication-Results headers the contender added (DKIM: pass if any signature passed); a check it did "
      "not report is counted as unreported, not as a disagreement (except rejections that say why: chainmail's "
      "550 5.7.23 at MAIL FROM is read as spf=fail, a reply naming DMARC as dmarc=fail). Expected dispositions follow each contender's configuration: "
      "chainmail rejects SPF fail at MAIL FROM, DMARC p=reject failures at end of message and holds p=quarantine "
      "failures; OpenDMARC (RejectFailures) and rspamd (dmarc actions) reject p=reject failures and accept the "
      "rest; the null filter accepts everything.\n")
    w("| contender | transport | messages | SPF disagree / compared (unreported) | DKIM | DMARC | disposition |")
    w("|---|---|---|---|---|---|---|")
    all_examples = []
    for c in contenders:
        for t in transports:
            records = read_records(os.path.join(out_dir, "results", f"{c}.{t}.r1.jsonl"))
            if records is None:
                continue
            counts, examples = check(c, records, labels)
            all_examples += [(c, t) + e for e in examples]

            def cell(k):
                comp, bad, unrep = counts[k]
                if c == "null" and k != "disposition":
                    return "-"
                return f"{bad} / {comp}" + (f" ({unrep})" if unrep else "")

            w(f"| {NAMES[c]} | {t} | {len(records)} | {cell('spf')} | {cell('dkim')} | {cell('dmarc')} | "
              f"{cell('disposition')} |")
    w("")
    if all_examples:
        # Grouped: the same disagreement on many messages is one finding.
        groups = {}
        for c, t, mid, kind, what, want, got in all_examples:
            key = (c, t, what, kind, want, got[:120])
            groups.setdefault(key, []).append(mid)
        w(f"Disagreements ({len(all_examples)}), grouped (every record is in OUT/results):\n")
        w("| contender | transport | check | message kind | expected | got | messages | e.g. |")
        w("|---|---|---|---|---|---|---|---|")
        for (c, t, what, kind, want, got), mids in sorted(groups.items(), key=lambda g: -len(g[1]))[:30]:
            w(f"| {c} | {t} | {what} | {kind} | {want} | {got.replace('|', '/')} | {len(mids)} | {mids[0]} |")
        w("")
    else:
        w("No disagreements.\n")

    w("## Notes\n")
    w("- messages/s counts messages the contender answered (accepted, rejected, held) per second of wall time; "
      "latency runs from a message's MAIL event (for a session's first message, from the connect) to its last "
      "reply; CPU is the daemons' utime+stime (all processes of each, /proc/PID/stat) over the timed cell, per "
      "message; peak RSS is, per daemon, its largest process's VmHWM (rspamd forks workers that share the main "
      "process's pages: Pss now, in parentheses, splits them fairly), summed over a chain.")
    w("- (a) over TCP: OpenDKIM and OpenDMARC write their end-of-message replies as separate small packets; with "
      "Nagle's algorithm on their side and delayed ACKs on the MTA's, each waits ~40 ms per message, which caps "
      "the chain at about connections / 0.09 s messages/s whatever the CPU. Postfix sets no TCP_NODELAY on milter "
      "sockets and neither does the driver, so this is what the deployment (inet sockets) pays.")
    w("- (a) SPF: the deployment checks SPF with postfix-policyd-spf-python (a Postfix policy service; OpenDMARC "
      "reads its Received-SPF header). Here OpenDMARC checks SPF itself (SPFSelfValidate, libspf2), so (a) "
      "includes SPF at its cheapest; the Python policy service it replaces costs more.")
    w("- The load driver and the DNS server run on the same cores as the daemons (their CPU per message is in the "
      "last column, not in the daemon's): at 32 connections the driver's threads compete with the daemon's.")
    w("- rspamd runs its shipped proxy worker count (1): one process scans, whatever the cores.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
