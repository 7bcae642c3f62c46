#!/usr/bin/python3
"""submission_client.py: the SMTP submission and IMAP client of the submission suite (submission_test.cc).
Run with /usr/bin/python3 (Debian's interpreter; the standard library is all it needs).

  submission_client.py smtp --server 127.0.0.1:PORT --mode starttls|tls|plain --ca CERT
                            [--auth plain|login --user U --password P] --from ADDR --to ADDR [--to ...]
                            [--subject S]
      One submission session. starttls: EHLO, STARTTLS, EHLO again; tls: TLS from the first octet (465);
      plain: no TLS at all. The certificate is verified against --ca for the name "localhost". Every step
      is attempted even after a refusal (except after a failed AUTH or lost connection), so the test sees
      each reply. Prints one JSON object: {"steps": [{"step", "code", "text"}...], "features_before_tls",
      "features", "auth_offered", "tls_version"}; code -1 means the connection failed at that step. Exit 0.

  submission_client.py imap --server 127.0.0.1:PORT --ca CERT --user U --password P --subject S
                            [--wait SECONDS]
      Logs in over implicit TLS (imaplib.IMAP4_SSL), selects INBOX and fetches the first message whose
      Subject contains S, polling up to --wait seconds for it to arrive. Prints one JSON object: {"login":
      "OK"|error text, "found": bool, "message": the raw message (latin-1 decoded)}. Exit 0.

SECURITY: a test tool only; it talks to loopback servers the test started.
"""

import argparse
import imaplib
import json
import smtplib
import ssl
import sys
import time


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def text_of(message):
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " / ".join(str(message).splitlines())


def features(client):
    return sorted(f"{k.upper()} {v}".strip() for k, v in client.esmtp_features.items())


def smtp(args):
    host, _, port = args.server.rpartition(":")
    out = {"steps": [], "features_before_tls": [], "features": [], "auth_offered": "", "tls_version": ""}

    def emit(step, code, text):
        out["steps"].append({"step": step, "code": code, "text": text_of(text)})

    step = "connect"
    try:
        if args.mode == "tls":
            client = smtplib.SMTP_SSL(timeout=args.timeout, context=context(args.ca))
            client._host = "localhost"  # the name the certificate is checked against
            code, text = client.connect(host, int(port))
        else:
            client = smtplib.SMTP(timeout=args.timeout)
            code, text = client.connect(host, int(port))
            client._host = "localhost"
        emit(step, code, text)
        step = "ehlo"
        code, text = client.ehlo("client.pydis.wtf")
        emit(step, code, text)
        if args.mode == "starttls":
            out["features_before_tls"] = features(client)
            step = "starttls"
            code, text = client.starttls(context=context(args.ca))
            emit(step, code, text)
            step = "ehlo"
            code, text = client.ehlo("client.pydis.wtf")
            emit(step, code, text)
        out["features"] = features(client)
        out["auth_offered"] = client.esmtp_features.get("auth", "")
        if hasattr(client.sock, "version"):
            out["tls_version"] = client.sock.version() or ""
        if args.auth:
            step = "auth"
            client.user, client.password = args.user, args.password
            mechanism = args.auth.upper()
            method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            try:
                code, text = client.auth(mechanism, method, initial_response_ok=(mechanism == "PLAIN"))
            except smtplib.SMTPAuthenticationError as e:
                code, text = e.smtp_code, e.smtp_error
            except smtplib.SMTPException as e:
                code, text = 0, f"{type(e).__name__}: {e}"
            emit(step, code, text)
            if code != 235:
                print(json.dumps(out))
                return 0
        step = "mail"
        code, text = client.mail(getattr(args, "from"))
        emit(step, code, text)
        step = "rcpt"
        for rcpt in args.to:
            code, text = client.rcpt(rcpt)
            emit(step, code, text)
        step = "data"
        message = (
            f"From: <{getattr(args, 'from')}>\r\nTo: <{args.to[0]}>\r\nSubject: {args.subject}\r\n"
            f"Message-ID: <{time.time_ns()}@client.pydis.wtf>\r\n\r\nsubmission test body\r\n"
        )
        code, text = client.docmd("DATA")
        if code == 354:
            client.send(message.encode() + b".\r\n")
            code, text = client.getreply()
        emit(step, code, text)
        step = "quit"
        code, text = client.docmd("QUIT")
        emit(step, code, text)
        client.close()
    except (smtplib.SMTPException, OSError) as e:
        emit(step, -1, f"{type(e).__name__}: {e}")
    print(json.dumps(out))
    return 0


def imap(args):
    host, _, port = args.server.rpartition(":")
    out = {"login": "", "found": False, "message": ""}
    try:
        client = imaplib.IMAP4_SSL(host, int(port), ssl_context=context(args.ca), timeout=args.timeout)
    except (OSError, imaplib.IMAP4.error) as e:
        out["login"] = f"connect: {type(e).__name__}: {e}"
        print(json.dumps(out))
        return 0
    try:
        typ, data = client.login(args.user, args.password)
        out["login"] = typ
    except imaplib.IMAP4.error as e:
        out["login"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        return 0
    deadline = time.monotonic() + args.wait
    while True:
        client.select("INBOX")
        typ, data = client.search(None, "SUBJECT", json.dumps(args.subject))
        ids = data[0].split() if typ == "OK" and data and data[0] else []
        if ids:
            typ, data = client.fetch(ids[0], "(RFC822)")
            if typ == "OK":
                out["found"] = True
                out["message"] = data[0][1].decode("latin-1")
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    client.logout()
    print(json.dumps(out))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("smtp")
    s.add_argument("--server", required=True)
    s.add_argument("--mode", choices=["starttls", "tls", "plain"], required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--auth", choices=["plain", "login"])
    s.add_argument("--user", default="")
    s.add_argument("--password", default="")
    s.add_argument("--from", required=True)
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--subject", default="submission test")
    s.add_argument("--timeout", type=float, default=20)
    i = sub.add_parser("imap")
    i.add_argument("--server", required=True)
    i.add_argument("--ca", required=True)
    i.add_argument("--user", required=True)
    i.add_argument("--password", required=True)
    i.add_argument("--subject", required=True)
    i.add_argument("--wait", type=float, default=10)
    i.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()
    return smtp(args) if args.command == "smtp" else imap(args)


if __name__ == "__main__":
    sys.exit(main())
