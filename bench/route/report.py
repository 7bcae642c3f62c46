#!/usr/bin/env python3
"""report.py - the routing benchmark's markdown report from its "key value" files (standard library only).

Usage: report.py MACHINE DATASET CHAINMAIL[,CHAINMAIL...] POSTFIX[,POSTFIX...] [COMPARE] > report.md
       (bench/route/run; COMPARE is the output of postfix_tables.py compare)

With several rounds (one file per round), each measurement is taken from its best round and the range is shown;
checks add up over all rounds.
"""

import sys

CATEGORIES = ("plain", "forward", "group", "service", "unknown")
MAPS = ("registeredaddress", "uid", "group-aliases", "service-mail")

# The targets.
WARM_1T_MIN = 100_000
PLAIN_RT_MAX = 2
POSTFIX_RATIO_MIN = 3.0
RSS_MAX_KB = 64 * 1024


def read(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            if key:
                values[key] = value
    return values


def num(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return float("nan")


def rate(x):
    return "n/a" if x != x else f"{x:,.0f}/s"


def mark(ok):
    return "PASS ✅" if ok else "FAIL ❌"


THROUGHPUTS = ("cold_1t", "cold_nt", "nocache_1t", "nocache_nt", "warm_1t", "warm_nt")
# Keys that belong to a measurement: taken from the same round as its throughput.
BELONGS = {"cold_1t": ("cold_1t_", "cold_rt_", "cold_us_", "cold_count_"), "cold_nt": ("cold_nt_",),
           "nocache_1t": ("nocache_1t_", "nocache_rt_", "nocache_us_", "nocache_count_"),
           "nocache_nt": ("nocache_nt_",),
           "warm_1t": ("warm_1t_", "warm_us_", "warm_lookups_"), "warm_nt": ("warm_nt_",)}
# Checks: added up over all rounds.
SUMMED = ("cold_1t_trouble", "cold_nt_trouble", "nocache_1t_trouble", "nocache_nt_trouble", "warm_1t_trouble",
          "warm_nt_trouble", "warm_1t_cache_misses", "warm_nt_cache_misses", "warm_1t_round_trips",
          "warm_nt_round_trips", "cold_unexpected", "nocache_unexpected", "warm_unexpected")


def score(values, key):
    x = num(values, key)
    return x if x == x else -1.0


def merge_chainmail(rounds):
    """The first round, with each measurement replaced by its best round's; checks summed; RSS the maximum."""
    merged = dict(rounds[0])
    for t in THROUGHPUTS:
        best = max(rounds, key=lambda r, t=t: score(r, f"{t}_per_s"))
        merged.update({k: v for k, v in best.items() if k.startswith(BELONGS[t])})
        merged[f"{t}_range"] = [num(r, f"{t}_per_s") for r in rounds]
    for k in merged:
        if k.startswith(SUMMED):
            merged[k] = str(sum(int(num(r, k)) for r in rounds if k in r))
    for k in ("cold_rt_plain_max", "nocache_rt_plain_max", "cold_rt_one_plain_user", "nocache_rt_one_plain_user"):
        merged[k] = str(max(num(r, k) for r in rounds))
    merged["peak_rss_kb"] = str(max(num(r, "peak_rss_kb") for r in rounds))
    return merged


def merge_postfix(rounds):
    best = dict(min(rounds, key=lambda r: num(r, "postfix_seconds")))
    best["postfix_range"] = [num(r, "postfix_seconds") for r in rounds]
    return best


def main():
    machine, dataset = read(sys.argv[1]), read(sys.argv[2])
    cm_rounds = [read(p) for p in sys.argv[3].split(",")]
    pf_rounds = [read(p) for p in sys.argv[4].split(",")]
    same = read(sys.argv[5]) if len(sys.argv) > 5 else {}
    cm, pf = merge_chainmail(cm_rounds), merge_postfix(pf_rounds)
    rounds = len(cm_rounds)
    n = int(num(cm, "addresses"))
    threads = cm.get("threads", "?")
    pf_s = num(pf, "postfix_seconds")
    pf_rate = int(pf.get("postfix_addresses", "0")) / pf_s if pf_s > 0 else float("nan")
    cold1 = num(cm, "cold_1t_per_s")
    coldn = num(cm, "cold_nt_per_s")
    nocache1 = num(cm, "nocache_1t_per_s")
    nocachen = num(cm, "nocache_nt_per_s")
    warm1 = num(cm, "warm_1t_per_s")
    warmn = num(cm, "warm_nt_per_s")
    rss_kb = num(cm, "peak_rss_kb")
    plain_max = num(cm, "cold_rt_plain_max")
    one_plain = num(cm, "cold_rt_one_plain_user")
    cache_desc = (f"{int(num(cm, 'cache_max_entries')):,} entries, {num(cm, 'cache_positive_ttl_s'):.0f} s positive / "
                  f"{num(cm, 'cache_negative_ttl_s'):.0f} s negative TTL")

    out = []
    w = out.append
    w("# Routing benchmark: chainmail Router vs Postfix LDAP tables\n")
    w("Produced by `bench/route/run`. Throughput is resolutions (addresses routed) per second of wall time.\n")

    w("## Machine\n")
    w("| | |\n|---|---|")
    w(f"| nproc | {machine.get('nproc', '?')} |")
    w(f"| CPU | {machine.get('cpu_model', '?')} |")
    w(f"| load average (1/5/15 min) at start / end | {machine.get('load_at_start', '?')} / "
      f"{machine.get('load_at_end', '?')} |")
    w(f"| build | {machine.get('build_type', '?')} |")
    w(f"| slapd / Postfix | OpenLDAP {machine.get('slapd_version', '?')} (back-mdb, loopback) / "
      f"Postfix {pf.get('postfix_version', '?')} |")
    w("")

    w("## Directory and address mix\n")
    w("| | |\n|---|---|")
    w(f"| entries | {dataset.get('entries', '?')} (FreeIPA layout, dc=box,dc=pydis,dc=wtf) |")
    w(f"| users | {dataset.get('users', '?')}, of which {dataset.get('forwarding_users', '?')} forward "
      "(registeredAddress) |")
    w(f"| groups | {dataset.get('groups', '?')}, {dataset.get('group_members_min', '?')}-"
      f"{dataset.get('group_members_max', '?')} members (mean {dataset.get('group_members_mean', '?')}); "
      f"{dataset.get('nested_groups', '?')} contain groups, nesting depth up to "
      f"{dataset.get('max_group_depth', '?')} |")
    w(f"| service accounts | {dataset.get('service_accounts', '?')} (svcN@int.pydis.wtf) |")
    w(f"| address mix | {n} addresses: {dataset.get('mix', '?')} (seed {dataset.get('seed', '?')}) |")
    w("")

    def spread(values):
        values = [v for v in values if v == v]
        return f"{min(values):,.0f} - {max(values):,.0f}" if values else "n/a"

    pf_addresses = int(pf.get("postfix_addresses", "0"))
    pf_rates = [pf_addresses / x for x in pf["postfix_range"] if x > 0]
    w(f"## Measurements (best of {rounds} round{'s' if rounds > 1 else ''})\n")
    w("Cold = chainmail as deployed right after a restart: a fresh CachedDirectory "
      f"({cache_desc}) over LdapDirectory at the start of one pass over the mix, so lookups repeated within "
      "the pass hit it. Nocache = LdapDirectory alone, every lookup an LDAP search (shown for transparency). "
      "Warm = the same cache, filled by a first pass.\n")
    w("| Measurement | Value | range over rounds |\n|---|---|---|")

    def row(label, key, value, count):
        w(f"| {label} | {rate(value)} ({count} in {num(cm, key + '_seconds'):.2f} s) | {spread(cm[key + '_range'])} |")

    row("chainmail cold, 1 thread (fresh cache at the start of the pass)", "cold_1t", cold1, n)
    row(f"chainmail cold, {threads} threads (sharing one fresh cache)", "cold_nt", coldn, n)
    row("chainmail nocache, 1 thread (no cache: every lookup is an LDAP search)", "nocache_1t", nocache1, n)
    row(f"chainmail nocache, {threads} threads", "nocache_nt", nocachen, n)
    row("chainmail warm, 1 thread (cache filled by a first pass)", "warm_1t", warm1,
        int(num(cm, "warm_1t_resolutions")))
    row(f"chainmail warm, {threads} threads", "warm_nt", warmn, int(num(cm, "warm_nt_resolutions")))
    w(f"| Postfix LDAP tables (postmap -q -, cleanup's recursive virtual alias expansion: "
      f"{pf.get('postfix_rounds', '?')} rounds of the maps in virtual_alias_maps order, "
      f"{pf.get('postfix_postmap_processes', '?')} processes; no cache) | "
      f"{rate(pf_rate)} ({pf_addresses} in {pf_s:.2f} s) | {spread(pf_rates)} |")
    w(f"| Postfix LDAP searches, whole mix (mean per resolution) | "
      f"{num(pf, 'postfix_searches') / pf_addresses if pf_addresses else float('nan'):.2f} "
      f"({int(num(pf, 'postfix_searches'))} searches) | |")
    for mode in ("cold", "nocache"):
        w(f"| LDAP round trips, {mode}, one plain user routed alone | {num(cm, f'{mode}_rt_one_plain_user'):.0f} | |")
        w(f"| LDAP round trips, {mode}, plain users in the mix (mean / max) | {num(cm, f'{mode}_rt_plain_mean'):.2f} / "
          f"{num(cm, f'{mode}_rt_plain_max'):.0f} | |")
        w(f"| LDAP round trips, {mode}, whole mix (mean per resolution, 1 thread) | "
          f"{num(cm, f'{mode}_rt_per_resolution'):.2f} ({int(num(cm, f'{mode}_1t_round_trips'))} searches) | |")
    w(f"| LDAP round trips, cold, whole mix, {threads} threads (mean per resolution) | "
      f"{num(cm, 'cold_nt_rt_per_resolution'):.2f} | |")
    w(f"| cold 1-thread pass: cache hits / misses / entries at the end | {int(num(cm, 'cold_1t_cache_hits'))} / "
      f"{int(num(cm, 'cold_1t_cache_misses'))} / {int(num(cm, 'cold_1t_cache_entries'))} | |")
    w(f"| peak RSS of route_bench | {rss_kb / 1024:.1f} MB ({rss_kb:.0f} KB) | (largest) |")
    w("")

    for mode, what in (("cold", "fresh cache at the start of the pass"), ("nocache", "no cache")):
        w(f"### chainmail {mode}, 1 thread, per category ({what}; its best round)\n")
        w("| category | addresses | LDAP round trips mean | max | µs per resolution | unexpected outcomes |")
        w("|---|---|---|---|---|---|")
        for c in CATEGORIES:
            w(f"| {c} | {int(num(cm, f'{mode}_count_{c}'))} | {num(cm, f'{mode}_rt_{c}_mean'):.2f} | "
              f"{num(cm, f'{mode}_rt_{c}_max'):.0f} | {num(cm, f'{mode}_us_{c}_mean'):.0f} | "
              f"{int(num(cm, f'{mode}_unexpected_{c}'))} |")
        w("")

    w("### chainmail warm, 1 thread, per category (5 passes, timing each resolution)\n")
    w("| category | µs per resolution | cache lookups per resolution | unexpected outcomes |\n|---|---|---|---|")
    for c in CATEGORIES:
        w(f"| {c} | {num(cm, f'warm_us_{c}_mean'):.1f} | {num(cm, f'warm_lookups_{c}_mean'):.1f} | "
          f"{int(num(cm, f'warm_unexpected_{c}'))} |")
    w("")

    w("### Postfix, per round and map (its best round)\n")
    w("Round 0 looks up the mix; round N+1 the addresses round N's answers expand to that a table serves "
      "(its `domain =` list), once per address of the mix that reached them.\n")
    w("| round | map (in order) | keys queried | found | seconds |\n|---|---|---|---|---|")
    for r in range(int(num(pf, "postfix_rounds")) if pf.get("postfix_rounds", "").isdigit() else 0):
        for m in MAPS:
            if f"postfix_r{r}_map_{m}_queried" in pf:
                w(f"| {r} | ldap-{m}.cf | {pf[f'postfix_r{r}_map_{m}_queried']} | "
                  f"{pf.get(f'postfix_r{r}_map_{m}_found', '?')} | {pf.get(f'postfix_r{r}_map_{m}_seconds', '?')} |")
    w(f"| | mix addresses not found by any map | {pf.get('postfix_unresolved', '?')} | | |")
    w("")

    w("### LDAP searches per resolution, per category: Postfix and chainmail (1 thread)\n")
    w("Postfix: one search per key sent whose domain the table serves, plus one base search per member DN below "
      "a group that ldap-group-aliases.cf finds (special_result_attribute = member, recursively). chainmail: "
      "LdapDirectory round trips.\n")
    w("| category | addresses | Postfix searches mean | Postfix keys sent mean | chainmail nocache | "
      "chainmail cold |\n|---|---|---|---|---|---|")
    for c in CATEGORIES:
        count = num(pf, f"postfix_count_{c}")
        w(f"| {c} | {count:.0f} | {num(pf, f'postfix_searches_{c}') / count if count else float('nan'):.2f} | "
          f"{num(pf, f'postfix_keys_{c}') / count if count else float('nan'):.2f} | "
          f"{num(cm, f'nocache_rt_{c}_mean'):.2f} | {num(cm, f'cold_rt_{c}_mean'):.2f} |")
    w("")

    def ratio(x):
        return x / pf_rate if pf_rate == pf_rate and pf_rate > 0 else float("nan")

    r_cold, r_nocache, r_warm = ratio(cold1), ratio(nocache1), ratio(warm1)
    w("## Ratios (chainmail / Postfix LDAP tables, same addresses, same slapd)\n")
    w("Postfix's LDAP tables have no cache: every key is an LDAP search. The target is judged on the cold-cache "
      "ratio (1 thread against Postfix's one process); the others are shown for comparison.\n")
    w("| | 1 thread | " + threads + " threads |\n|---|---|---|")
    w(f"| cold / Postfix (fresh cache, as deployed after a restart) **judged** | {r_cold:.2f}x | {ratio(coldn):.2f}x |")
    w(f"| nocache / Postfix (both search LDAP for every lookup) | {r_nocache:.2f}x | {ratio(nocachen):.2f}x |")
    w(f"| warm / Postfix (cache filled) | {r_warm:.1f}x | {ratio(warmn):.1f}x |")
    w("")

    w("## Targets (from the issue)\n")
    w("| Target | Measured | Result |\n|---|---|---|")
    w(f"| warm cache >= {WARM_1T_MIN:,} resolutions/s on one core | {rate(warm1)} | {mark(warm1 >= WARM_1T_MIN)} |")
    w(f"| cold cache: at most {PLAIN_RT_MAX} LDAP round trips for a plain user | {one_plain:.0f} alone; max "
      f"{plain_max:.0f} over {int(num(cm, 'cold_count_plain'))} plain users in the pass (nocache: "
      f"{num(cm, 'nocache_rt_one_plain_user'):.0f} / {num(cm, 'nocache_rt_plain_max'):.0f}) | "
      f"{mark(plain_max <= PLAIN_RT_MAX and one_plain <= PLAIN_RT_MAX)} |")
    w(f"| >= {POSTFIX_RATIO_MIN:.0f}x the Postfix tables' throughput, same addresses: judged on cold cache, "
      f"1 thread | {r_cold:.2f}x (nocache {r_nocache:.2f}x, warm {r_warm:.1f}x: not judged) | "
      f"{mark(r_cold >= POSTFIX_RATIO_MIN)} |")
    w(f"| peak RSS under 64 MB | {rss_kb / 1024:.1f} MB | {mark(rss_kb < RSS_MAX_KB)} |")
    w("")

    unexpected = int(num(cm, "cold_unexpected"))
    unexpected_nocache = int(num(cm, "nocache_unexpected"))
    troubles = sum(int(num(cm, f"{p}_trouble")) for p in THROUGHPUTS)
    misses = int(num(cm, "warm_1t_cache_misses")) + int(num(cm, "warm_nt_cache_misses"))
    routed = n - int(num(cm, "cold_count_unknown"))
    pf_found = int(pf.get("postfix_addresses", "0")) - int(pf.get("postfix_unresolved", "0"))
    w(f"## Checks (all {rounds} rounds)\n")
    w(f"- chainmail outcomes not as the category expects (1-thread passes): cold {unexpected}, nocache "
      f"{unexpected_nocache}; trouble answers in all passes: {troubles}.")
    w(f"- cache misses / LDAP searches during the timed warm passes: {misses} / "
      f"{int(num(cm, 'warm_1t_round_trips')) + int(num(cm, 'warm_nt_round_trips'))} (should be 0 / 0).")
    w(f"- addresses that should resolve: {routed}; Postfix found {pf_found} (its best round).")
    w(f"- Postfix LDAP searches (best round): {int(num(pf, 'postfix_searches'))} counted by this benchmark, "
      f"{int(num(pf, 'postfix_slapd_searches'))} by slapd's cn=Monitor (should be equal). Its expansion: "
      f"{int(num(pf, 'postfix_final_recipients'))} final recipients; addresses reached twice within one "
      f"expansion (looked up once): {int(num(pf, 'postfix_duplicates_not_sent'))}; expansions unfinished after 10 "
      f"rounds: {int(num(pf, 'postfix_too_deep'))} (should be 0).")
    if same:
        per = ", ".join(f"{c} {same.get(f'compare_{c}_mismatches', '?')}/{same.get(f'compare_{c}_compared', '?')}"
                        for c in CATEGORIES)
        w(f"- same routes: Postfix's final recipients against chainmail's targets (no cache, routed once more "
          f"after the rounds; chainmail's unknown against no map finding the address), every address of the mix: "
          f"{same.get('compare_mismatches', '?')} of {same.get('compare_addresses', '?')} differ ({per}; "
          "mismatched/compared).")
        for n in range(1, 11):
            if f"compare_example_{n}" in same:
                w(f"  - {same[f'compare_example_{n}']}")
    w("")
    w("## Method notes\n")
    w("- Cold = Router over a CachedDirectory created empty just before the pass (the shipped chainmail.conf "
      "cache settings, which are CacheOptions' defaults), over LdapDirectory: each address of the mix is routed "
      "once, and only lookups repeated within the pass (members shared between groups, nested groups reached "
      "twice, service accounts) are answered by the cache. The N-thread pass shares one fresh cache, as the "
      "socketmap server's threads do. Nocache = Router over LdapDirectory alone, so repeats search again. "
      "Warm = the same cache filled by a first, untimed pass. LDAP round trips are LdapDirectory::round_trips() "
      "(searches; the bind happens once per pooled connection, opened before the timed passes).")
    w("- Postfix: cleanup(8)'s virtual alias expansion (cleanup_map1n.c) over the deployment's four "
      "virtual_alias_maps LDAP tables, every lookup done by `postmap -c DIR -q - ldap:FILE` (one process per map "
      "and round, reading the round's keys that the maps before it did not find; its connection is reused across "
      "keys). Every address a lookup returns is looked up again through all four maps in the next round, until "
      "it is not found or maps to itself (at most 10 rounds), so group members are routed again as chainmail "
      "routes them (a member may forward). The tables search only keys whose domain is in their `domain =` list "
      "(pydis.wtf, int.pydis.wtf, pydis.com, pythondiscord.com, owlcorp.uk): uid@localhost and forwarding "
      "addresses elsewhere cost no search and are final. Each address of the mix is expanded on its own, as "
      "cleanup expands each recipient, without a cache (a user in two groups of the mix is searched for each); "
      "within one expansion an address is looked up once. Its time is the sum of all postmap wall times, "
      "process start included.")
    w("- Each contender ran the same number of rounds, alternating; every figure is the best round (the range shows "
      "the spread). Nothing here fails on slowness; a loaded machine (see the load average) lowers every number.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
