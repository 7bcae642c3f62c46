#!/usr/bin/env python3
"""postfix_tables.py - the routing benchmark's Postfix side: cleanup(8)'s virtual alias expansion over the
deployment's LDAP tables, each lookup done by `postmap -q -` (standard library only).

Usage:
  postfix_tables.py run PFDIR ADDRESSES LDIF OUT RESULTS    one measurement (bench/route/run, once per round)
  postfix_tables.py compare RESULTS TARGETS ADDRESSES       Postfix's final recipients against chainmail's
                                                            targets (route_bench --dump-targets); to stdout

run: as cleanup_map1n_internal() does for each recipient of a message, every address of the mix is looked up
through virtual_alias_maps (PFDIR/ldap-{registeredaddress,uid,group-aliases,service-mail}.cf, in that order:
the first map that finds a key answers it), and every address a lookup returns is looked up again, round after
round, until it is not found or maps to itself. The tables search LDAP only for keys whose domain is in their
`domain =` list (db_common_check_domain); a result outside it (userN@localhost, userN@example.net) costs no
search, is not sent, and is a final recipient. Each recipient is expanded on its own, as Postfix does, without
a cache: a member shared by two groups in the mix is searched for each of them; within one recipient's
expansion an address already looked up is not sent again (the final recipients are deduplicated, as
cleanup's duplicate filter does). Expansion stops at MAX_DEPTH rounds (cleanup would defer the message).

A round is one postmap process per map, fed the round's keys that the maps before it did not find (one line
per recipient that needs the key, duplicates included: postmap searches each line). Postfix's time is the sum
of the postmap wall times, process start included. LDAP searches are counted per category of the original
address: one per key sent whose domain the table serves, plus, for each group found by ldap-group-aliases.cf,
one base search per member DN, recursively through nested groups (special_result_attribute = member).

OUT gets "key value" lines; RESULTS gets "address<TAB>status<TAB>final,final" lines (status found, unresolved
or too-deep).
"""

import os
import re
import subprocess
import sys
import time

MAPS = ("registeredaddress", "uid", "group-aliases", "service-mail")
CATEGORIES = ("plain", "forward", "group", "service", "unknown")
MAX_DEPTH = 10  # rounds; cleanup's virtual_alias_recursion_limit is 1000 per address, never reached here


def domain_of(address):
    at = address.rfind("@")
    return address[at + 1:].lower() if at > 0 else ""


def read_addresses(path):
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip() and not line.startswith("#")]


def table_domains(cf):
    """The `domain =` list of a Postfix LDAP table (lower-case); None when it has none (every key searched)."""
    with open(cf, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip() == "domain":
                return {d.lower() for d in re.split(r"[,\s]+", value.strip()) if d}
    return None


def member_searches(ldif):
    """cn (lower-case) -> LDAP searches dict_ldap makes below a group found by its query: one base search per
    member DN value, and below each member that is a group, that group's own."""
    members = {}
    dn = None
    with open(ldif, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("dn: "):
                dn = line[4:].lower()
            elif line.startswith("member: ") and dn is not None:
                members.setdefault(dn, []).append(line[8:].lower())
    cost = {}

    def searches(group_dn, path):
        if group_dn not in cost:
            n = 0
            for m in members.get(group_dn, ()):
                n += 1
                if m in members and m not in path:
                    n += searches(m, path | {m})
            cost[group_dn] = n
        return cost[group_dn]

    by_cn = {}
    for group_dn in members:
        rdn = group_dn.split(",", 1)[0]
        if rdn.startswith("cn="):
            by_cn[rdn[3:]] = searches(group_dn, {group_dn})
    return by_cn


def postmap(pfdir, table, keys, stem):
    """Looks `keys` up in ldap:PFDIR/ldap-TABLE.cf with one `postmap -q -`: ({key lower-case: value}, ns)."""
    keys_path, found_path, log_path = stem + ".keys", stem + ".found", stem + ".log"
    with open(keys_path, "w", encoding="utf-8") as f:
        f.writelines(k + "\n" for k in keys)
    cmd = ["postmap", "-c", pfdir, "-q", "-", f"ldap:{os.path.join(pfdir, 'ldap-' + table + '.cf')}"]
    with open(keys_path, "rb") as stdin, open(found_path, "wb") as stdout, open(log_path, "wb") as stderr:
        start = time.perf_counter_ns()
        rc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=stderr, check=False).returncode
        elapsed = time.perf_counter_ns() - start
    # postmap -q - exits 1 when it found nothing; anything on stderr (a lookup error, a fatal) spoils the run.
    if rc > 1 or os.path.getsize(log_path) > 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            sys.stderr.write(f.read())
        sys.exit(f"postfix_tables.py: postmap ldap:ldap-{table}.cf failed (exit {rc})")
    found = {}
    with open(found_path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            found[key.lower()] = value
    return found, elapsed


def run(pfdir, addresses_path, ldif, out_path, results_path):
    mix = read_addresses(addresses_path)
    domains = {m: table_domains(os.path.join(pfdir, f"ldap-{m}.cf")) for m in MAPS}
    in_any_table = set().union(*(d for d in domains.values() if d is not None))
    every_key = any(d is None for d in domains.values())
    group_cost = member_searches(ldif)

    def searched(table, key):
        return domains[table] is None or domain_of(key) in domains[table]

    seen = [{address.lower()} for _, address in mix]  # per recipient: the addresses looked up (or queued)
    final = [set() for _ in mix]
    status = ["found"] * len(mix)
    searches = dict.fromkeys(CATEGORIES, 0)
    keys_sent = dict.fromkeys(CATEGORIES, 0)
    stats = []  # (round, map, queried, found, ns)
    total_ns = 0
    duplicates = 0
    pending = [(i, address) for i, (_, address) in enumerate(mix)]  # (recipient, key)
    depth = 0
    while pending and depth < MAX_DEPTH:
        answer = [None] * len(pending)
        for table in MAPS:
            todo = [j for j in range(len(pending)) if answer[j] is None]
            if not todo:
                break
            keys = [pending[j][1] for j in todo]
            found, ns = postmap(pfdir, table, keys, os.path.join(pfdir, f"round{depth}.{table}"))
            total_ns += ns
            hits = 0
            for j in todo:
                recipient, key = pending[j]
                category = mix[recipient][0]
                if searched(table, key):
                    searches[category] += 1
                    keys_sent[category] += 1
                    if table == "group-aliases":  # the query matched a group: its member DNs, found or not
                        searches[category] += group_cost.get(key[: key.rfind("@")].lower(), 0)
                value = found.get(key.lower())
                if value is not None:
                    answer[j] = value
                    hits += 1
            stats.append((depth, table, len(todo), hits, ns))
        following = []
        for j, (recipient, key) in enumerate(pending):
            if answer[j] is None:
                final[recipient].add(key.lower())
                if depth == 0:
                    status[recipient] = "unresolved"
                continue
            for result in (r for r in re.split(r"[,\s]+", answer[j]) if r):
                lower = result.lower()
                if lower == key.lower() or not (every_key or domain_of(lower) in in_any_table):
                    final[recipient].add(lower)  # maps to itself, or no table searches it: delivered as is
                elif lower in seen[recipient]:
                    duplicates += 1
                else:
                    seen[recipient].add(lower)
                    following.append((recipient, result))
        pending = following
        depth += 1
    for recipient, key in pending:  # beyond MAX_DEPTH: cleanup would defer the message
        status[recipient] = "too-deep"
        final[recipient].add(key.lower())

    lines = [f"postfix_addresses {len(mix)}", f"postfix_rounds {depth}", f"postfix_postmap_processes {len(stats)}"]
    for d, table, queried, hits, ns in stats:
        lines += [f"postfix_r{d}_map_{table}_queried {queried}", f"postfix_r{d}_map_{table}_found {hits}",
                  f"postfix_r{d}_map_{table}_seconds {ns / 1e9:.4f}"]
    for table in MAPS:
        rows = [s for s in stats if s[1] == table]
        lines += [f"postfix_map_{table}_queried {sum(s[2] for s in rows)}",
                  f"postfix_map_{table}_found {sum(s[3] for s in rows)}",
                  f"postfix_map_{table}_seconds {sum(s[4] for s in rows) / 1e9:.4f}"]
    for c in CATEGORIES:
        lines += [f"postfix_count_{c} {sum(1 for k, _ in mix if k == c)}", f"postfix_searches_{c} {searches[c]}",
                  f"postfix_keys_{c} {keys_sent[c]}"]
    lines += [f"postfix_searches {sum(searches.values())}",
              f"postfix_unresolved {status.count('unresolved')}",
              f"postfix_too_deep {status.count('too-deep')}",
              f"postfix_duplicates_not_sent {duplicates}",
              f"postfix_final_recipients {sum(len(f) for f in final)}",
              f"postfix_seconds {total_ns / 1e9:.4f}"]
    with open(out_path, "a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    with open(results_path, "w", encoding="utf-8") as f:
        for (_, address), st, fin in zip(mix, status, final):
            f.write(f"{address}\t{st}\t{','.join(sorted(fin))}\n")


def compare(results_path, targets_path, addresses_path):
    """Per address: Postfix's final recipients against chainmail's targets (addresses, case-folded). An address
    no map finds (Postfix would reject it: relay_recipient_maps) matches chainmail's unknown."""
    mix = read_addresses(addresses_path)

    def table(path, kinds):
        """Lines in the mix's order: (status or outcome, {address, ...}); `kinds`: targets are "kind:address"."""
        with open(path, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        if len(rows) != len(mix) or any(len(r) != 3 or r[0] != a for r, (_, a) in zip(rows, mix)):
            sys.exit(f"postfix_tables.py: {path} does not hold one line per address of {addresses_path}")
        return [(r[1], {x.split(":", 1)[1] if kinds else x for x in r[2].lower().split(",") if x}) for r in rows]

    compared = dict.fromkeys(CATEGORIES, 0)
    mismatched = dict.fromkeys(CATEGORIES, 0)
    examples = []
    for (c, address), (pf_status, pf_final), (cm_outcome, cm_final) in zip(mix, table(results_path, False),
                                                                          table(targets_path, True)):
        compared[c] = compared.get(c, 0) + 1
        if pf_status == "unresolved":
            same = cm_outcome == "unknown"
        else:
            same = pf_status == "found" and cm_outcome == "routed" and pf_final == cm_final
        if not same:
            mismatched[c] = mismatched.get(c, 0) + 1
            if len(examples) < 10:
                only_pf = sorted(pf_final - cm_final)[:4]
                only_cm = sorted(cm_final - pf_final)[:4]
                examples.append(f"{address} ({c}): postfix {pf_status} {len(pf_final)}, chainmail {cm_outcome} "
                                f"{len(cm_final)}; only postfix {' '.join(only_pf) or '-'}; only chainmail "
                                f"{' '.join(only_cm) or '-'}")
    print(f"compare_addresses {sum(compared.values())}")
    print(f"compare_mismatches {sum(mismatched.values())}")
    for c in compared:
        print(f"compare_{c}_compared {compared[c]}")
        print(f"compare_{c}_mismatches {mismatched[c]}")
    for n, e in enumerate(examples, 1):
        print(f"compare_example_{n} {e}")


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        sys.exit(__doc__.split("\n\n", 1)[1].split("\n\n", 1)[0])


if __name__ == "__main__":
    main()
