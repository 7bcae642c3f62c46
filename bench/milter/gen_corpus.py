#!/usr/bin/python3
"""gen_corpus.py - the milter benchmark's corpus: signed messages, their DNS zones and the expected verdicts.

Usage: gen_corpus.py OUTDIR [--sessions N] [--seed S]      (bench/milter/run; Debian's python3-dkim, python3-nacl)

Writes into OUTDIR:
  corpus.txt          sessions for milter_load: "session ADDR NAME HELO", "message ID MAIL_FROM FILE", "rcpt ADDR"
  msgs/ID.eml         each message as received (CRLF), 2-50 KB: text/plain, multipart/alternative, or
                      multipart/mixed with a base64 attachment; one or two DKIM signatures (rsa-sha256 2048-bit,
                      ed25519-sha256) made with dkimpy
  labels.tsv          per message: id, kind, From domain, envelope domain, client address, and the expected
                      spf (MAIL FROM), dkim (pass if a signature verifies, fail if all fail, none), dmarc, and the
                      DMARC policy that applies to a failure (reject / quarantine / none)
  zone.conf           the zones as unbound local-data (SPF, DKIM keys, DMARC records, A/MX for the SPF
                      mechanisms and the HELO names)
  dataset.txt         "key value" summary for the report

Sender domains (all in the local DNS only): northwind-traders.com (p=reject, SPF -all with an include, RSA and
Ed25519 keys), contoso-mail.net (p=quarantine, SPF ~all), widgets.co.uk (p=reject, strict alignment, under a
multi-label public suffix), fabrikam.org (p=none, sp=quarantine; mail from news.fabrikam.org signed d=fabrikam.org,
SPF with a and mx mechanisms), tailspin-toys.com (no DMARC record), and an ESP, mailhub-esp.net, that sends for
some of them (bounces.mailhub-esp.net envelope, its own d= signature).

Message kinds (weights): direct (aligned SPF and DKIM), esp_aligned (SPF unaligned, From-domain signature),
subdomain (relaxed alignment to the organizational domain), tampered (body changed after signing: DKIM fails,
SPF unaligned -> DMARC fail), unaligned_from (only the ESP's signature -> DMARC fail), spf_fail (client not in the
sender's -all SPF; half signed -> DMARC pass by DKIM, half unsigned -> fail), softfail (~all), none_policy (p=none
failure). Recipients are demo-directory addresses on pydis.wtf that route (conf/ldap/demo.ldif).
"""

import argparse
import base64
import os
import random
import subprocess
import sys
import textwrap

import dkim
import nacl.encoding
import nacl.signing

ESP = "mailhub-esp.net"
ESP_BOUNCE = "bounces.mailhub-esp.net"
ESP_IPS = ["198.51.100.70", "198.51.100.71", "198.51.100.72"]

# domain -> its records and keys. "sign" lists (selector, algorithm) of the domain's own signing keys.
DOMAINS = {
    "northwind-traders.com": dict(
        spf="v=spf1 ip4:192.0.2.0/26 include:_spf.mailhub-esp.net -all",
        dmarc="v=DMARC1; p=reject; rua=mailto:dmarc-reports@northwind-traders.com; fo=1",
        sign=[("nw2024", "rsa"), ("nwed", "ed25519")], ips=["192.0.2.10", "192.0.2.11", "192.0.2.12"],
        policy="reject"),
    "contoso-mail.net": dict(
        spf="v=spf1 ip4:198.51.100.16/28 ~all",
        dmarc="v=DMARC1; p=quarantine; pct=100",
        sign=[("s1", "rsa")], ips=["198.51.100.20", "198.51.100.21"], policy="quarantine"),
    "widgets.co.uk": dict(
        spf="v=spf1 ip4:203.0.113.128/25 -all",
        dmarc="v=DMARC1; p=reject; adkim=s; aspf=s",
        sign=[("k1", "rsa"), ("k2", "ed25519")], ips=["203.0.113.140", "203.0.113.141"], policy="reject"),
    "fabrikam.org": dict(
        spf="v=spf1 mx -all",
        dmarc="v=DMARC1; p=none; sp=quarantine",
        sign=[("mail", "rsa")], ips=["192.0.2.100"], policy="none"),
    "tailspin-toys.com": dict(
        spf="v=spf1 ip4:198.51.100.100 -all", dmarc=None,
        sign=[("default", "rsa")], ips=["198.51.100.100"], policy="none"),
    ESP: dict(
        spf="v=spf1 ip4:198.51.100.64/26 -all", dmarc="v=DMARC1; p=none",
        sign=[("esp1", "rsa")], ips=ESP_IPS, policy="none"),
}
NEWS = "news.fabrikam.org"  # signs as d=fabrikam.org; SPF "a mx" of its own
NEWS_IP = "192.0.2.101"
SPF_FAIL_IPS = ["203.0.113.5", "203.0.113.17", "203.0.113.60"]  # in nobody's SPF
SOFTFAIL_IPS = ["198.51.100.200", "198.51.100.201"]

KINDS = [("direct", 30), ("esp_aligned", 14), ("subdomain", 10), ("tampered", 12), ("unaligned_from", 10),
         ("spf_fail", 10), ("softfail", 7), ("none_policy", 7)]

RCPTS = ["alice@pydis.wtf", "bob@pydis.wtf", "carol@pydis.wtf", "joe@pydis.wtf", "devops@pydis.wtf",
         "alice@pydis.com", "staff@pydis.wtf", "dmarc+reports@int.pydis.wtf"]

WORDS = ("the of and to in is for on that with as are this be by from at or it an was your we will can all "
         "meeting invoice order shipment report quarter update account payment schedule project review team "
         "please attached find details regards thanks customer delivery request confirm contract budget "
         "release server migration maintenance window access password reset newsletter offer community").split()


def keygen(keys_dir):
    """Fresh keys for every selector: {(domain, selector): (algorithm, private, public_b64)}."""
    os.makedirs(keys_dir, exist_ok=True)
    keys = {}
    for domain, d in DOMAINS.items():
        for selector, alg in d["sign"]:
            if alg == "rsa":
                pem_path = os.path.join(keys_dir, f"{domain}.{selector}.pem")
                subprocess.run(["openssl", "genrsa", "-traditional", "-out", pem_path, "2048"], check=True,
                               stderr=subprocess.DEVNULL)
                der = subprocess.run(["openssl", "rsa", "-in", pem_path, "-pubout", "-outform", "DER"],
                                     check=True, capture_output=True).stdout
                with open(pem_path, "rb") as f:
                    keys[(domain, selector)] = ("rsa", f.read(), base64.b64encode(der).decode())
            else:
                sk = nacl.signing.SigningKey.generate()
                private = sk.encode(encoder=nacl.encoding.Base64Encoder)
                public = base64.b64encode(bytes(sk.verify_key)).decode()
                keys[(domain, selector)] = ("ed25519", private, public)
    return keys


def txt(name, value):
    """An unbound local-data TXT line, the value split into strings of at most 255 characters."""
    parts = " ".join('"' + value[i:i + 255] + '"' for i in range(0, len(value), 255))
    return f"local-data: '{name}. 300 IN TXT {parts}'"


def zone(keys):
    lines = []
    for domain, d in DOMAINS.items():
        lines.append(txt(domain, d["spf"]))
        if d["dmarc"]:
            lines.append(txt("_dmarc." + domain, d["dmarc"]))
        for i, ip in enumerate(d["ips"]):
            host = f"mail{i + 1}.{domain}"
            lines.append(f"local-data: '{host}. 300 IN A {ip}'")
            lines.append(txt(host, "v=spf1 a -all"))  # the HELO name's own SPF
        for selector, _ in d["sign"]:
            alg, _, public = keys[(domain, selector)]
            lines.append(txt(f"{selector}._domainkey.{domain}", f"v=DKIM1; k={alg}; p={public}"))
    lines.append(txt(ESP_BOUNCE, "v=spf1 ip4:198.51.100.64/26 -all"))
    lines.append(txt("_spf." + ESP, "v=spf1 ip4:198.51.100.64/26 ~all"))
    lines.append("local-data: 'fabrikam.org. 300 IN MX 10 mx.fabrikam.org.'")
    lines.append("local-data: 'mx.fabrikam.org. 300 IN A 192.0.2.100'")
    lines.append(txt(NEWS, "v=spf1 a:out.news.fabrikam.org mx:fabrikam.org -all"))
    lines.append(f"local-data: 'out.news.fabrikam.org. 300 IN A {NEWS_IP}'")
    return "\n".join(lines) + "\n"


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def paragraphs(rng, size):
    out = []
    total = 0
    while total < size:
        p = textwrap.fill(words(rng, rng.randint(30, 90)).capitalize() + ".", 72)
        out.append(p)
        total += len(p) + 2
    return "\n\n".join(out)


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def make_body(rng, size):
    """(content headers, body) of about `size` bytes: text, alternative, or mixed with an attachment."""
    shape = rng.choices(["text", "alternative", "mixed"], [50, 30, 20])[0]
    if shape == "text":
        return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], paragraphs(rng, size)
    boundary = "=_bench_" + "".join(rng.choice("0123456789abcdef") for _ in range(24))
    if shape == "alternative":
        text = paragraphs(rng, size // 3)
        html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in text.split("\n\n")) + "</body></html>"
        body = (f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n\n"
                f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n{textwrap.fill(html, 76)}\n\n"
                f"--{boundary}--\n")
        return [f'Content-Type: multipart/alternative; boundary="{boundary}"'], body
    text = paragraphs(rng, max(600, size // 5))
    blob = base64.encodebytes(rng.randbytes(max(1000, size * 3 // 5))).decode()
    name, ctype = rng.choice([("report.pdf", "application/pdf"), ("photo.png", "image/png"),
                              ("data.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")])
    body = (f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n\n"
            f"--{boundary}\nContent-Type: {ctype}; name=\"{name}\"\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\n"
            f"{blob}\n--{boundary}--\n")
    return [f'Content-Type: multipart/mixed; boundary="{boundary}"'], body


def sign(msg, keys, domain, selector):
    alg, private, _ = keys[(domain, selector)]
    algorithm = b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256"
    sig = dkim.sign(msg, selector.encode(), domain.encode(), private, signature_algorithm=algorithm,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                                     b"content-type", b"list-unsubscribe"])
    return sig + msg


def plan(rng, kind):
    """The sender side of a session of `kind`: addresses, client, signers and the expected verdicts."""
    own = ["northwind-traders.com", "contoso-mail.net", "widgets.co.uk", "tailspin-toys.com"]
    p = dict(kind=kind, tamper=False)
    if kind == "direct":
        dom = rng.choice(own)
        d = DOMAINS[dom]
        p.update(from_dom=dom, env=f"bounce@{dom}", ip=rng.choice(d["ips"]),
                 signers=[(dom, s) for s, _ in d["sign"]], spf="pass", dkim="pass",
                 dmarc="pass" if d["dmarc"] else "none", policy=d["policy"])
    elif kind == "esp_aligned":
        dom = rng.choice(["northwind-traders.com", "contoso-mail.net"])
        p.update(from_dom=dom, env=f"b-{rng.randint(1000, 99999)}@{ESP_BOUNCE}", ip=rng.choice(ESP_IPS),
                 signers=[(dom, DOMAINS[dom]["sign"][0][0]), (ESP, "esp1")], spf="pass", dkim="pass",
                 dmarc="pass", policy=DOMAINS[dom]["policy"])
    elif kind == "subdomain":
        p.update(from_dom=NEWS, env=f"news@{NEWS}", ip=NEWS_IP, signers=[("fabrikam.org", "mail")], spf="pass",
                 dkim="pass", dmarc="pass", policy="quarantine")
    elif kind == "tampered":
        dom = rng.choice(["northwind-traders.com", "contoso-mail.net"])
        p.update(from_dom=dom, env=f"b-{rng.randint(1000, 99999)}@{ESP_BOUNCE}", ip=rng.choice(ESP_IPS),
                 signers=[(dom, DOMAINS[dom]["sign"][0][0]), (ESP, "esp1")], tamper=True, spf="pass",
                 dkim="fail", dmarc="fail", policy=DOMAINS[dom]["policy"])
    elif kind == "unaligned_from":
        dom = rng.choice(["northwind-traders.com", "contoso-mail.net", "widgets.co.uk"])
        p.update(from_dom=dom, env=f"b-{rng.randint(1000, 99999)}@{ESP_BOUNCE}", ip=rng.choice(ESP_IPS),
                 signers=[(ESP, "esp1")], spf="pass", dkim="pass", dmarc="fail", policy=DOMAINS[dom]["policy"])
    elif kind == "spf_fail":
        dom = rng.choice(["northwind-traders.com", "widgets.co.uk"])
        signed = rng.random() < 0.5
        p.update(from_dom=dom, env=f"bounce@{dom}", ip=rng.choice(SPF_FAIL_IPS),
                 signers=[(dom, DOMAINS[dom]["sign"][0][0])] if signed else [], spf="fail",
                 dkim="pass" if signed else "none", dmarc="pass" if signed else "fail",
                 policy=DOMAINS[dom]["policy"])
    elif kind == "softfail":
        p.update(from_dom="contoso-mail.net", env="bounce@contoso-mail.net", ip=rng.choice(SOFTFAIL_IPS),
                 signers=[("contoso-mail.net", "s1")], spf="softfail", dkim="pass", dmarc="pass",
                 policy="quarantine")
    elif kind == "none_policy":
        p.update(from_dom="fabrikam.org", env=f"b-{rng.randint(1000, 99999)}@{ESP_BOUNCE}",
                 ip=rng.choice(ESP_IPS), signers=[], spf="pass", dkim="none", dmarc="fail", policy="none")
    else:
        raise ValueError(kind)
    return p


def helo_for(ip):
    for domain, d in DOMAINS.items():
        if ip in d["ips"]:
            return f"mail{d['ips'].index(ip) + 1}.{domain}"
    return {NEWS_IP: "out.news.fabrikam.org"}.get(ip, f"host-{ip.replace('.', '-')}.dyn.example.net")


def message(rng, keys, p, n):
    size = rng.choice([rng.randint(2_000, 8_000), rng.randint(8_000, 20_000), rng.randint(20_000, 48_000)])
    content_headers, body = make_body(rng, size)
    local = rng.choice(["news", "billing", "noreply", "support", "alerts", "j.smith", "marketing"])
    rcpts = rng.sample(RCPTS, rng.choices([1, 2, 3], [70, 20, 10])[0])
    helo = helo_for(p["ip"])
    # The sending MTA's trace header goes on top of its signatures.
    received = (f"Received: from [10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)}] (client.internal)\r\n"
                f"\tby {helo} with ESMTPSA id {rng.getrandbits(48):012x};\r\n"
                f"\tMon, 24 Nov 2026 10:{n % 60:02d}:{rng.randint(0, 59):02d} +0000\r\n").encode()
    headers = [
        f'From: "{local.title()}" <{local}@{p["from_dom"]}>',
        f"To: {', '.join(rcpts)}",
        f"Subject: {words(rng, rng.randint(3, 9)).capitalize()}",
        f"Date: Mon, 24 Nov 2026 10:{n % 60:02d}:{rng.randint(0, 59):02d} +0000",
        f"Message-ID: <{rng.getrandbits(64):016x}.{n}@{p['from_dom']}>",
        "MIME-Version: 1.0",
        *content_headers,
    ]
    if p["env"].endswith(ESP_BOUNCE):
        headers.append(f"List-Unsubscribe: <https://{ESP}/u/{rng.getrandbits(40):010x}>")
        headers.append("X-Mailer: MailHub ESP 4.2")
    # Every line ends with CRLF, the last one too (SMTP cannot deliver anything else).
    raw = crlf("\n".join(headers) + "\n\n" + body.rstrip("\n") + "\n").encode()
    for domain, selector in p["signers"]:
        raw = sign(raw, keys, domain, selector)
    if p["tamper"]:
        raw = raw + b"\r\n-- \r\nForwarded by a list that appends a footer.\r\n"
    return received + raw, rcpts, helo


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--sessions", type=int, default=600)
    ap.add_argument("--seed", type=int, default=20261124)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.outdir, "msgs"), exist_ok=True)
    keys = keygen(os.path.join(a.outdir, "keys"))
    with open(os.path.join(a.outdir, "zone.conf"), "w") as f:
        f.write(zone(keys))

    corpus, labels = [], ["id\tkind\tfrom_domain\tmail_from\tclient\tspf\tdkim\tdmarc\tpolicy"]
    sizes, kinds, n = [], {}, 0
    for _ in range(a.sessions):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        p = plan(rng, kind)
        count = rng.choices([1, 2, 3], [70, 20, 10])[0]
        session = None
        for _ in range(count):
            n += 1
            mid = f"m{n:05d}"
            raw, rcpts, helo = message(rng, keys, p, n)
            if session is None:
                session = f"session {p['ip']} {helo} {helo}"
                corpus.append(session)
            with open(os.path.join(a.outdir, "msgs", mid + ".eml"), "wb") as f:
                f.write(raw)
            corpus.append(f"message {mid} {p['env']} msgs/{mid}.eml")
            corpus.extend(f"rcpt {r}" for r in rcpts)
            labels.append("\t".join([mid, kind, p["from_dom"], p["env"], p["ip"], p["spf"], p["dkim"], p["dmarc"],
                                     p["policy"]]))
            sizes.append(len(raw))
            kinds[kind] = kinds.get(kind, 0) + 1
    with open(os.path.join(a.outdir, "corpus.txt"), "w") as f:
        f.write("\n".join(corpus) + "\n")
    with open(os.path.join(a.outdir, "labels.tsv"), "w") as f:
        f.write("\n".join(labels) + "\n")
    sizes.sort()
    with open(os.path.join(a.outdir, "dataset.txt"), "w") as f:
        f.write(f"sessions {a.sessions}\nmessages {n}\nseed {a.seed}\n")
        f.write(f"size_min {sizes[0]}\nsize_median {sizes[len(sizes) // 2]}\nsize_max {sizes[-1]}\n")
        f.write(f"size_mean {sum(sizes) // len(sizes)}\n")
        f.write("kinds " + ",".join(f"{k}:{kinds.get(k, 0)}" for k, _ in KINDS) + "\n")
        f.write(f"domains {len(DOMAINS)}\n")
    print(f"gen_corpus: {n} messages in {a.sessions} sessions, {sizes[0]}-{sizes[-1]} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
