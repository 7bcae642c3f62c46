#!/usr/bin/env python3
"""gen_users.py - the auth benchmark's directory (standard library only).

Writes OUT/auth.ldif: the FreeIPA layout of conf/ldap/demo.ldif (containers, the chainmail service bind DN with
password chainmail-demo, the mailusers gate group) and USERS users uid=userNNNNN (mail userNNNNN@pydis.wtf,
memberOf mailusers, password pw-NNNNN stored as {SSHA} as a directory would hold it), so every login costs the
server the same salted hash check whoever asks. Deterministic (fixed salts from the uid).

Usage: gen_users.py OUT [--users 10000]
"""

import argparse
import base64
import hashlib
import os

BASE = "dc=box,dc=pydis,dc=wtf"
USERS = "cn=users,cn=accounts," + BASE
GROUPS = "cn=groups,cn=accounts," + BASE
GATE = "cn=mailusers," + GROUPS


def ssha(password, salt):
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--users", type=int, default=10000)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = [f"dn: {BASE}\nobjectClass: top\nobjectClass: domain\ndc: box\n"]
    for rdn in ("cn=accounts", "cn=users,cn=accounts", "cn=groups,cn=accounts", "cn=etc", "cn=sysaccounts,cn=etc"):
        cn = rdn.split(",")[0].split("=")[1]
        out.append(f"dn: {rdn},{BASE}\nobjectClass: top\nobjectClass: nsContainer\ncn: {cn}\n")
    out.append(
        f"dn: uid=chainmail,cn=sysaccounts,cn=etc,{BASE}\nobjectClass: account\nobjectClass: simpleSecurityObject\n"
        "objectClass: top\nuid: chainmail\nuserPassword: chainmail-demo\n"
    )
    uids = [f"user{i:05d}" for i in range(1, args.users + 1)]
    members = "".join(f"member: uid={u},{USERS}\n" for u in uids)
    out.append(f"dn: {GATE}\nobjectClass: top\nobjectClass: groupOfNames\ncn: mailusers\n{members}")
    for i, uid in enumerate(uids, start=1):
        salt = hashlib.sha1(uid.encode()).digest()[:8]
        out.append(
            f"dn: uid={uid},{USERS}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n"
            f"objectClass: inetOrgPerson\nobjectClass: inetUser\nuid: {uid}\ncn: User {i}\nsn: {i}\n"
            f"mail: {uid}@pydis.wtf\nuserPassword: {ssha(f'pw-{i:05d}', salt)}\nmemberOf: {GATE}\n"
        )
    with open(os.path.join(args.out, "auth.ldif"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
