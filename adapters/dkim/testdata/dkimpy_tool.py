#!/usr/bin/python3
"""dkimpy_tool.py - dkimpy (Debian python3-dkim) as the independent DKIM implementation dkim_test checks against.

Run with /usr/bin/python3 (Debian's modules). One JSON request on stdin, one JSON answer on stdout, so a
whole test batch costs one interpreter start:

  {"op": "sign", "jobs": [{"message": M, "key": PEM_PATH, "selector": S, "domain": D,
                           "algorithm": "rsa-sha256" | "ed25519-sha256", "canon": "relaxed/simple",
                           "headers": ["from", ...] or null, "previous": N or absent}]}
      -> {"signed": [M', ...]}        M' = the DKIM-Signature field dkimpy made, then M
  With "previous": N the job signs the N-th job's output instead of "message" (several signatures, one run).
  {"op": "verify", "keys": {"sel._domainkey.dom": "v=DKIM1; ...", ...}, "minkey": 1024, "messages": [M, ...]}
      -> {"results": [[true, false, ...], ...]}   per message, one entry per DKIM-Signature, top first

Messages travel as JSON strings whose characters are the message bytes (latin-1). Errors go to stderr with
exit status 1. DNS is never used: keys come from the request.
"""
import base64
import json
import sys

import dkim


def signing_key(path, algorithm):
    pem = open(path, "rb").read()
    if algorithm != "ed25519-sha256":
        return pem  # dkimpy reads RSA PEM (PKCS#1 or PKCS#8) itself
    # dkimpy wants the 32-byte Ed25519 seed in base64; an Ed25519 PKCS#8 DER key ends with it.
    lines = [l for l in pem.splitlines() if l and not l.startswith(b"-----")]
    der = base64.b64decode(b"".join(lines))
    return base64.b64encode(der[-32:])


def sign(jobs):
    out = []
    for job in jobs:
        source = out[job["previous"]] if job.get("previous") is not None else job["message"]
        message = source.encode("latin-1")
        hc, bc = job.get("canon", "relaxed/simple").split("/")
        headers = job.get("headers")
        field = dkim.sign(
            message,
            job["selector"].encode(),
            job["domain"].encode(),
            signing_key(job["key"], job["algorithm"]),
            canonicalize=(hc.encode(), bc.encode()),
            signature_algorithm=job["algorithm"].encode(),
            include_headers=[h.encode() for h in headers] if headers else None,
        )
        out.append((field + message).decode("latin-1"))
    return {"signed": out}


def verify(keys, minkey, messages):
    table = {name.lower().rstrip(".") + ".": record.encode() for name, record in keys.items()}

    def dnsfunc(name, timeout=5):
        return table.get(name.decode("ascii").lower())

    results = []
    for text in messages:
        message = text.encode("latin-1")
        d = dkim.DKIM(message, minkey=minkey)
        count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
        per_message = []
        for i in range(count):
            try:
                per_message.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
            except dkim.DKIMException:
                per_message.append(False)
        results.append(per_message)
    return {"results": results}


def main():
    request = json.load(sys.stdin)
    if request["op"] == "sign":
        answer = sign(request["jobs"])
    elif request["op"] == "verify":
        answer = verify(request["keys"], request.get("minkey", 1024), request["messages"])
    else:
        raise SystemExit("unknown op " + request["op"])
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
