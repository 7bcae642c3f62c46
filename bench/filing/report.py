#!/usr/bin/python3
"""report.py - bench/filing's report: cells.jsonl (one line per round, file system, contender and
concurrency, written by bench/filing/run) into a Markdown table of messages/s, median over the rounds with
the range in brackets, and the ratio chainmail / dovecot-lda (of the medians; per-round ratios in brackets).

  report.py CELLS_JSONL RSS_TXT EXPECTED_JSON
"""
import json
import statistics
import sys


def main():
    cells = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    rss = [line.split() for line in open(sys.argv[2]) if line.strip()]
    corpus = json.load(open(sys.argv[3]))
    rounds = max(c["round"] for c in cells)
    out = []
    exp = corpus["expected"]
    out.append(f"Corpus: {corpus['messages']} messages, {corpus['bytes'] / 1e6:.1f} MB "
               f"(median {corpus['median_bytes'] / 1e3:.1f} KB, {corpus['min_bytes'] / 1e3:.1f}-"
               f"{corpus['max_bytes'] / 1e3:.0f} KB); chainmail files them as Reports.New {exp['Reports.New']}, "
               f"Reports.Invalid {exp['Reports.Invalid']}, Failures {exp['Failures']}, INBOX {exp['INBOX']}; "
               f"dovecot-lda files all into Reports.New. {rounds} round(s), median messages/s [range].")
    out.append("")
    out.append("| file system | pipes | chainmail-service-mail | dovecot-lda | ratio chainmail/dovecot-lda "
               "| /bin/true (spawn only) |")
    out.append("|---|---:|---:|---:|---:|---:|")
    keys = []
    for c in cells:
        k = (c["fs"], c["load"]["concurrency"])
        if k not in keys:
            keys.append(k)
    bad = sum(1 for c in cells if c["landed"] != c["load"]["messages"] or c["load"]["failed"])
    for fs, conc in keys:
        rate = {}
        per_round = {}
        for name in ("chainmail", "dovecot", "spawn"):
            sel = [c for c in cells if c["fs"] == fs and c["load"]["concurrency"] == conc and c["contender"] == name]
            rate[name] = [c["load"]["per_second"] for c in sel]
            per_round[name] = {c["round"]: c["load"]["per_second"] for c in sel}

        def fmt(values):
            if not values:
                return "-"
            med = statistics.median(values)
            if len(values) == 1:
                return f"{med:,.0f}"
            return f"{med:,.0f} [{min(values):,.0f}-{max(values):,.0f}]"

        ratio = "-"
        if rate["chainmail"] and rate["dovecot"]:
            ratio = f"**{statistics.median(rate['chainmail']) / statistics.median(rate['dovecot']):.2f}x**"
            rr = [per_round["chainmail"][r] / per_round["dovecot"][r]
                  for r in per_round["chainmail"] if r in per_round["dovecot"]]
            if len(rr) > 1:
                ratio += f" [{min(rr):.2f}-{max(rr):.2f}]"
        out.append(f"| {fs} | {conc} | {fmt(rate['chainmail'])} | {fmt(rate['dovecot'])} | {ratio} "
                   f"| {fmt(rate['spawn'])} |")
    out.append("")
    if rss:
        out.append("Peak RSS of one run (/usr/bin/time %M): " + "; ".join(
            f"{which.lower()} message ({int(size) / 1e3:.1f} KB) {name} {int(kb) / 1024:.1f} MB"
            for which, size, name, kb in rss) + ".")
        out.append("")
    out.append("Every message landed in new/ in every cell." if bad == 0 else
               f"**{bad} cell(s) lost or refused messages** (see cells.jsonl).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
