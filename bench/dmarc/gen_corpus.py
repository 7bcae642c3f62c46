#!/usr/bin/python3
"""gen_corpus.py - DMARC aggregate reports for bench/dmarc/run.

  gen_corpus.py OUT_DIR N [SEED]

Writes N RFC 7489 aggregate reports into OUT_DIR/corpus, named as reporters name them
(org!domain!begin!end.xml / .xml.gz / .zip, the encodings in turn), sizes drawn so that most are small, as
real ones are: 80% 1-10 KB, 17% 10-100 KB, 3% 100 KB-1 MB of XML. Also OUT_DIR/large.xml, one 1 MB report
(plain XML, named as a reporter would: dmarc-cat refuses other names) and OUT_DIR/large20/, 20 copies of it,
for the single-report throughput. Deterministic for a seed. Prints totals as JSON.
"""
import gzip
import io
import json
import os
import random
import sys
import zipfile

HEAD = """<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>noreply-dmarc-support@{org}</email>
    <report_id>{rid}</report_id>
    <date_range>
      <begin>{begin}</begin>
      <end>{end}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>reject</p>
    <sp>reject</sp>
    <pct>100</pct>
  </policy_published>
"""
RECORD = """  <record>
    <row>
      <source_ip>{ip}</source_ip>
      <count>{count}</count>
      <policy_evaluated>
        <disposition>{disp}</disposition>
        <dkim>{dkim}</dkim>
        <spf>{spf}</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>{domain}</domain>
        <selector>s{sel}</selector>
        <result>{dkim}</result>
      </dkim>
      <spf>
        <domain>{domain}</domain>
        <result>{spf}</result>
      </spf>
    </auth_results>
  </record>
"""
ORGS = ["google.com", "Yahoo", "Outlook.com", "Mail.Ru", "fastmail.com", "Mimecast", "comcast.net", "web.de"]
DOMAINS = ["pydis.wtf", "pythondiscord.com", "int.pydis.wtf"]


def report(rng, target_bytes, index):
    org = rng.choice(ORGS)
    domain = rng.choice(DOMAINS)
    begin = 1764000000 + rng.randrange(0, 90) * 86400
    out = io.StringIO()
    out.write(HEAD.format(org=org, rid=f"bench-{index}-{rng.randrange(10**12)}", begin=begin,
                          end=begin + 86399, domain=domain))
    size = out.tell()
    while size < target_bytes:
        ok = rng.random() < 0.8
        rec = RECORD.format(ip=f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                            count=rng.randrange(1, 500), disp="none" if ok else rng.choice(["quarantine", "reject"]),
                            dkim="pass" if ok else "fail", spf=rng.choice(["pass", "fail"]), domain=domain,
                            sel=rng.randrange(4))
        out.write(rec)
        size += len(rec)
    out.write("</feedback>\n")
    return org, domain, begin, out.getvalue().encode()


def main():
    out_dir, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    corpus = os.path.join(out_dir, "corpus")
    os.makedirs(corpus, exist_ok=True)
    xml_bytes = file_bytes = 0
    for i in range(n):
        u = rng.random()
        lo, hi = (1_000, 10_000) if u < 0.80 else (10_000, 100_000) if u < 0.97 else (100_000, 1_000_000)
        org, domain, begin, xml = report(rng, rng.randrange(lo, hi), i)
        name = f"{org}!{domain}!{begin}!{begin + 86399}!{i}"
        kind = i % 3
        if kind == 0:
            path, data = os.path.join(corpus, name + ".xml"), xml
        elif kind == 1:
            path, data = os.path.join(corpus, name + ".xml.gz"), gzip.compress(xml, 6, mtime=0)
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name + ".xml", xml)
            path, data = os.path.join(corpus, name + ".zip"), buf.getvalue()
        with open(path, "wb") as f:
            f.write(data)
        xml_bytes += len(xml)
        file_bytes += len(data)
    org, domain, begin, large = report(rng, 1_000_000, n)
    name = f"{org}!{domain}!{begin}!{begin + 86399}"
    with open(os.path.join(out_dir, name + ".xml"), "wb") as f:
        f.write(large)
    os.makedirs(os.path.join(out_dir, "large20"), exist_ok=True)
    for i in range(20):
        with open(os.path.join(out_dir, "large20", f"{name}!{i}.xml"), "wb") as f:
            f.write(large)
    os.symlink(name + ".xml", os.path.join(out_dir, "large"))
    print(json.dumps({"files": n, "xml_bytes": xml_bytes, "file_bytes": file_bytes, "large_bytes": len(large)}))


if __name__ == "__main__":
    main()
