#!/usr/bin/python3
"""smtp_send.py: the SMTP client and DKIM tool of the integration tests (run with /usr/bin/python3: Debian's
python3-dkim and python3-dnspython live there, not in a pyenv interpreter).

  smtp_send.py send --server 127.0.0.1:PORT --helo NAME --from ADDR --to ADDR [--to ADDR...]
                    [--dkim-key PEM --dkim-domain D --dkim-selector S] < message
      Sends the message on stdin (any line ending; sent as CRLF), optionally DKIM-signed first with dkimpy.
      Every command is sent even after a rejection, so a test sees each reply. Prints one line per SMTP
      reply: "STEP CODE TEXT" with STEP in connect, ehlo, mail, rcpt (one line per recipient), data (the
      reply after the final dot, or to DATA itself when that was refused), quit. A multi-line reply is joined
      with " / ". A lost connection prints "STEP -1 error text" and stops. Exit status 0 whatever the
      replies; 2 on bad arguments or a key that cannot be read.

  smtp_send.py sign --dkim-key PEM --dkim-domain D --dkim-selector S < message
      Prints the signed message (DKIM-Signature prepended), CRLF line endings.

  smtp_send.py verify --dns 127.0.0.1:PORT [--index N] < message
      Verifies DKIM-Signature number N (default 0, the topmost) with dkimpy, fetching keys from that DNS
      server only (over UDP, with the small stub resolver below). Prints "pass d=DOMAIN s=SELECTOR" and exits 0, or "fail REASON" and exits 1.

SECURITY: test tool only; it talks to loopback servers the test started.
"""

import argparse
import importlib
import random
import smtplib
import socket
import struct
import sys

# dkimpy imports dnspython when it can, which pulls in an HTTP stack (~0.5 s per run). Keys are fetched by
# query_txt() below instead, so dnspython is kept out.
dkim = None


def load_dkim():
    global dkim
    if "dns" not in sys.modules:
        sys.modules["dns"] = None  # dkim.dnsplug falls back when the import fails
    dkim = importlib.import_module("dkim")

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sign(message: bytes, key_path: str, domain: str, selector: str) -> bytes:
    load_dkim()
    with open(key_path, "rb") as f:
        key = f.read()
    signature = dkim.sign(message, selector.encode(), domain.encode(), key, include_headers=SIGNED_HEADERS)
    return signature + message


def reply_text(message) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " / ".join(message.splitlines())


def send(args) -> int:
    message = crlf(sys.stdin.buffer.read())
    if args.dkim_key:
        message = sign(message, args.dkim_key, args.dkim_domain, args.dkim_selector)
    host, _, port = args.server.rpartition(":")
    out = []

    def emit(step, code, text):
        out.append(f"{step} {code} {reply_text(text)}")

    step = "connect"
    try:
        client = smtplib.SMTP(timeout=args.timeout)
        code, text = client.connect(host, int(port))
        emit(step, code, text)
        step = "ehlo"
        code, text = client.ehlo(args.helo)
        emit(step, code, text)
        step = "mail"
        code, text = client.mail(getattr(args, "from"))
        emit(step, code, text)
        step = "rcpt"
        for rcpt in args.to:
            code, text = client.rcpt(rcpt)
            emit(step, code, text)
        step = "data"
        # smtplib.data() raises on a refused DATA command and returns the final reply otherwise; the raw
        # commands keep every reply visible whatever happened before.
        code, text = client.docmd("DATA")
        if code == 354:
            client.send(dot_stuff(message) + b".\r\n")
            code, text = client.getreply()
        emit(step, code, text)
        step = "quit"
        code, text = client.docmd("QUIT")
        emit(step, code, text)
        client.close()
    except (smtplib.SMTPException, OSError) as e:
        emit(step, -1, f"{type(e).__name__}: {e}")
    print("\n".join(out))
    return 0


def dot_stuff(message: bytes) -> bytes:
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def skip_name(packet: bytes, pos: int) -> int:
    while True:
        length = packet[pos]
        if length >= 0xC0:  # compression pointer: two octets end the name
            return pos + 2
        pos += 1 + length
        if length == 0:
            return pos


def query_txt(server: str, name: str, timeout: float):
    """TXT strings of `name`, joined, from `server` ("HOST:PORT") over UDP; None for NXDOMAIN or no data.

    A minimal stub (RFC 1035 4.1): dnspython takes ~0.5 s to import, longer than the whole test step.
    """
    host, _, port = server.rpartition(":")
    qid = random.randrange(0x10000)
    qname = b"".join(bytes([len(label)]) + label for label in name.rstrip(".").encode().split(b".")) + b"\0"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 16, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, (host, int(port)))
        packet, _ = s.recvfrom(65535)
    rid, flags, qdcount, ancount = struct.unpack("!HHHH", packet[:8])
    rcode = flags & 0xF
    if rid != qid:
        raise dkim.DnsTimeoutError(f"DNS answer with id {rid}, expected {qid}")
    if rcode == 3:
        return None
    if rcode != 0:
        raise dkim.DnsTimeoutError(f"DNS rcode {rcode} for {name}")
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(packet, pos) + 4
    for _ in range(ancount):
        pos = skip_name(packet, pos)
        rtype, _, _, rdlength = struct.unpack("!HHIH", packet[pos:pos + 10])
        pos += 10
        rdata = packet[pos:pos + rdlength]
        pos += rdlength
        if rtype != 16:
            continue
        strings, i = [], 0
        while i < len(rdata):
            strings.append(rdata[i + 1:i + 1 + rdata[i]])
            i += 1 + rdata[i]
        return b"".join(strings)
    return None


def verify(args) -> int:
    load_dkim()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return query_txt(args.dns, name, timeout)

    message = crlf(sys.stdin.buffer.read())
    verifier = dkim.DKIM(message)
    try:
        ok = verifier.verify(idx=args.index, dnsfunc=dnsfunc)
    except (dkim.DKIMException, OSError) as e:
        print(f"fail {e}")
        return 1
    if not ok:
        print("fail signature does not verify")
        return 1
    print(f"pass d={verifier.domain.decode()} s={verifier.selector.decode()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_send = sub.add_parser("send")
    p_send.add_argument("--server", required=True)
    p_send.add_argument("--helo", default=socket.getfqdn())
    p_send.add_argument("--from", required=True)
    p_send.add_argument("--to", action="append", required=True)
    p_send.add_argument("--timeout", type=float, default=30.0)
    for p in (p_send, sub.add_parser("sign")):
        p.add_argument("--dkim-key")
        p.add_argument("--dkim-domain")
        p.add_argument("--dkim-selector")

    p_verify = sub.add_parser("verify")
    p_verify.add_argument("--dns", required=True)
    p_verify.add_argument("--index", type=int, default=0)

    args = parser.parse_args()
    try:
        if args.command == "send":
            return send(args)
        if args.command == "sign":
            if not (args.dkim_key and args.dkim_domain and args.dkim_selector):
                parser.error("sign needs --dkim-key, --dkim-domain and --dkim-selector")
            sys.stdout.buffer.write(sign(crlf(sys.stdin.buffer.read()), args.dkim_key, args.dkim_domain,
                                         args.dkim_selector))
            return 0
        return verify(args)
    except OSError as e:
        print(f"smtp_send.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
