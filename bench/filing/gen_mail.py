#!/usr/bin/python3
"""gen_mail.py - the mail bench/filing/run pipes into chainmail-service-mail and dovecot-lda.

  gen_mail.py OUT_DIR N [SEED]

Writes N messages OUT_DIR/corpus/NNNNNN.eml (LF line ends, as Postfix's pipe(8) hands them over) and
OUT_DIR/expected.json, the folder chainmail's dmarc-reports service should file each kind into. The mix is
what a DMARC rua/ruf mailbox receives:

  76% aggregate reports, one attachment in the encodings reporters use (45% .zip as Google and Yahoo send it,
      40% .xml.gz as Outlook and Mimecast do, 15% plain .xml), after a short text part; the XML is drawn from
      bench/dmarc/gen_corpus.py's generator (80% 1-10 KB, 17% 10-60 KB, 3% 60-200 KB of XML) -> Reports.New
   4% broken aggregate reports (truncated XML, or gzip cut short) -> Reports.Invalid
  12% failure reports (RFC 6591 multipart/report, feedback-type auth-failure, with the failing message's
      headers, some with its body) -> Failures
   8% plain mail (a human's question, a newsletter, a bounce-like notice) -> INBOX

Message sizes come out at 1.5 KB to ~270 KB, most of them a few KB (the compressed reports are small, as
real ones are). Deterministic for a seed: no clock, no random boundaries, fixed zip and gzip timestamps.
"""
import base64
import gzip
import io
import json
import os
import random
import sys
import zipfile

sys.dont_write_bytecode = True  # leave no __pycache__ in bench/dmarc/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dmarc"))
import gen_corpus  # noqa: E402  (bench/dmarc's report generator: same XML as the viewer benchmark)

REPORTERS = [
    ("google.com", "noreply-dmarc-support@google.com", "zip"),
    ("Yahoo", "dmarchelp@yahooinc.com", "zip"),
    ("Outlook.com", "dmarcreport@microsoft.com", "gz"),
    ("Mimecast", "dmarc-report@mimecast.org", "gz"),
    ("fastmail.com", "noreply-dmarc@fastmail.com", "gz"),
    ("web.de", "dmarc_support@web.de", "xml"),
    ("comcast.net", "dmarc_reports@comcast.net", "xml"),
]
DOMAINS = gen_corpus.DOMAINS


def b64(data):
    return base64.encodebytes(data).decode("ascii")


def date_header(rng):
    day = rng.randrange(1, 28)
    return f"Date: {['Mon', 'Tue', 'Wed', 'Thu', 'Fri'][day % 5]}, {day:02d} Nov 2025 " \
           f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d} +0000\n"


def envelope_headers(rng, i, sender, to="dmarc@pydis.wtf"):
    host = sender.split("@")[1]
    ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return (f"Return-Path: <{sender}>\n"
            f"Delivered-To: dmarc@service-mail.localhost\n"
            f"Received: from mail.{host} (mail.{host} [{ip}])\n"
            f"\tby mx.pydis.wtf (Postfix) with ESMTPS id Q{i:08X}\n"
            f"\tfor <{to}>; Wed, 26 Nov 2025 00:00:00 +0000 (UTC)\n"
            f"Authentication-Results: mx.pydis.wtf; dkim=pass header.d={host}; spf=pass "
            f"smtp.mailfrom={host}; dmarc=pass header.from={host}\n"
            + date_header(rng) +
            f"Message-ID: <bench-{i}.{rng.randrange(10**9)}@{host}>\n")


def xml_size(rng):
    u = rng.random()
    lo, hi = (1_000, 10_000) if u < 0.80 else (10_000, 60_000) if u < 0.97 else (60_000, 200_000)
    return rng.randrange(lo, hi)


def zip_bytes(name, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, date_time=(2025, 11, 26, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def aggregate(rng, i, broken):
    org, sender, enc = rng.choice(REPORTERS)
    _, domain, begin, xml = gen_corpus.report(rng, xml_size(rng), i)
    if broken:
        xml = xml[: len(xml) * 2 // 3]  # not well-formed: cut inside an element
    base = f"{org}!{domain}!{begin}!{begin + 86399}"
    if enc == "zip":
        name, ctype, data = base + ".zip", "application/zip", zip_bytes(base + ".xml", xml)
    elif enc == "gz":
        name, ctype, data = base + ".xml.gz", "application/gzip", gzip.compress(xml, 6, mtime=0)
    else:
        name, ctype, data = base + ".xml", "text/xml", xml
    if broken and enc != "xml" and rng.random() < 0.5:
        data = data[: len(data) // 2]  # a compressed file cut short in transit
    boundary = f"=_bench_{i}_{rng.randrange(10**12)}"
    return (envelope_headers(rng, i, sender) +
            f"From: {org} <{sender}>\nTo: dmarc@pydis.wtf\n"
            f"Subject: Report Domain: {domain} Submitter: {org} Report-ID: <{i}.{begin}@{org}>\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n"
            f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
            f"This is an aggregate report from {org}.\n\nReport domain: {domain}\nSubmitter: {org}\n\n"
            f"--{boundary}\nContent-Type: {ctype}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\n\n{b64(data)}--{boundary}--\n")


LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
         "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.\n")


def failure(rng, i):
    org, sender, _ = rng.choice(REPORTERS)
    domain = rng.choice(DOMAINS)
    ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    boundary = f"=_ruf_{i}_{rng.randrange(10**12)}"
    original = (f"Received: from spoofer.example ([{ip}]) by mx.{org.lower()} with ESMTP id {i}\n"
                f"From: \"Support\" <support@{domain}>\nTo: victim{i}@{org.lower()}\n"
                f"Subject: Your account needs attention\nDate: Tue, 25 Nov 2025 10:00:00 +0000\n"
                f"Message-ID: <spoof-{i}@spoofer.example>\nMIME-Version: 1.0\n"
                f"Content-Type: text/plain; charset=utf-8\n")
    with_body = rng.random() < 0.5
    last = (f"Content-Type: message/rfc822\n\n{original}\n" + LOREM * rng.randrange(2, 40)) if with_body \
        else f"Content-Type: text/rfc822-headers\n\n{original}"
    return (envelope_headers(rng, i, sender) +
            f"From: {sender}\nTo: dmarc@pydis.wtf\n"
            f"Subject: DMARC Failure report for {domain} Mail-From: IP:{ip}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=feedback-report;\n\tboundary=\"{boundary}\"\n\n"
            f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
            f"This is an email abuse report for an email message received from IP {ip}.\n"
            f"The message below did not meet the sending domain's dmarc policy.\n\n"
            f"--{boundary}\nContent-Type: message/feedback-report\n\n"
            f"Feedback-Type: auth-failure\nUser-Agent: bench/1.0\nVersion: 1\n"
            f"Original-Mail-From: <bounce@spoofer.example>\nOriginal-Rcpt-To: <victim{i}@{org.lower()}>\n"
            f"Arrival-Date: Tue, 25 Nov 2025 10:00:00 +0000\nSource-IP: {ip}\n"
            f"Authentication-Results: mx.{org.lower()}; dmarc=fail (p=reject) header.from={domain}\n"
            f"Delivery-Result: reject\nAuth-Failure: dmarc\nReported-Domain: {domain}\n\n"
            f"--{boundary}\n{last}\n--{boundary}--\n")


def plain(rng, i):
    sender = rng.choice(["alice@example.org", "news@lists.example.com", "postmaster@example.net"])
    subject = rng.choice(["Question about your DMARC policy", "Weekly digest", "Delivery notice"])
    return (envelope_headers(rng, i, sender) +
            f"From: {sender}\nTo: dmarc@pydis.wtf\nSubject: {subject}\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            + LOREM * rng.randrange(3, 60))


def main():
    out_dir, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    corpus = os.path.join(out_dir, "corpus")
    os.makedirs(corpus, exist_ok=True)
    expected = {"Reports.New": 0, "Reports.Invalid": 0, "Failures": 0, "INBOX": 0}
    sizes = []
    for i in range(n):
        u = rng.random()
        if u < 0.76:
            text, folder = aggregate(rng, i, False), "Reports.New"
        elif u < 0.80:
            text, folder = aggregate(rng, i, True), "Reports.Invalid"
        elif u < 0.92:
            text, folder = failure(rng, i), "Failures"
        else:
            text, folder = plain(rng, i), "INBOX"
        data = text.encode()
        with open(os.path.join(corpus, f"{i:06d}.eml"), "wb") as f:
            f.write(data)
        expected[folder] += 1
        sizes.append(len(data))
    sizes.sort()
    totals = {"messages": n, "bytes": sum(sizes), "median_bytes": sizes[n // 2], "max_bytes": sizes[-1],
              "min_bytes": sizes[0], "expected": expected}
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(totals, f)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
