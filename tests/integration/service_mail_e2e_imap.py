#!/usr/bin/python3
"""service_mail_e2e_imap.py: the IMAP client of the service-mail end-to-end suite (service_mail_e2e_test.cc).
Run with /usr/bin/python3 (Debian's interpreter; imaplib from the standard library is all it needs).

  service_mail_e2e_imap.py --server 127.0.0.1:PORT --user U --password P --mailbox NAME
                           [--header NAME:VALUE] [--count N] [--wait SECONDS]
      Logs in over plain IMAP (the server is on loopback, which Dovecot counts as secure), lists every
      mailbox (LIST "" "*") and the subscribed ones (LSUB "" "*"), SELECTs NAME (read-only, EXAMINE) and
      fetches every message (BODY.PEEK[], so nothing is marked seen). With --header, only messages whose
      header NAME contains VALUE are returned (SEARCH HEADER). Polls until at least --count such messages
      are there or --wait seconds have passed (a mailbox that does not exist yet counts as empty).
      Prints one JSON object and exits 0:
        {"login": "OK" | error text, "list": [names], "lsub": [names], "select": "OK" | error text,
         "exists": N, "messages": [raw message, latin-1 decoded, CRLF as served]}

SECURITY: a test tool only; it talks to a loopback server the test started. Mailbox names are quoted.
"""

import argparse
import imaplib
import json
import re
import sys
import time

LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) (?P<name>.+)$')


def mailbox_names(lines):
    """The names in LIST/LSUB answers (quoted or atoms; literals come as tuples)."""
    names = []
    for line in lines or []:
        if line is None:
            continue
        if isinstance(line, tuple):
            names.append(line[1].decode("utf-8", "replace"))
            continue
        m = LIST_LINE.match(line)
        if not m:
            continue
        name = m.group("name")
        if name.startswith(b'"') and name.endswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        names.append(name.decode("utf-8", "replace"))
    return names


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_all(client, args):
    """(select status, exists, [messages]) for the mailbox, or the error."""
    typ, data = client.select(quoted(args.mailbox), readonly=True)
    if typ != "OK":
        return (data[0].decode("utf-8", "replace") if data and data[0] else typ), 0, []
    exists = int(data[0]) if data and data[0] else 0
    if args.header:
        name, _, value = args.header.partition(":")
        typ, data = client.uid("SEARCH", None, "HEADER", quoted(name), quoted(value))
    else:
        typ, data = client.uid("SEARCH", None, "ALL")
    if typ != "OK":
        return "SEARCH failed", exists, []
    messages = []
    for uid in (data[0] or b"").split():
        typ, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
        if typ != "OK":
            continue
        for part in parts:
            if isinstance(part, tuple):
                messages.append(part[1].decode("latin-1"))
    return "OK", exists, messages


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--header", default="")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--wait", type=float, default=10)
    args = parser.parse_args()

    host, _, port = args.server.rpartition(":")
    out = {"login": "", "list": [], "lsub": [], "select": "", "exists": 0, "messages": []}
    deadline = time.monotonic() + args.wait
    try:
        client = imaplib.IMAP4(host, int(port), timeout=30)
        try:
            client.login(args.user, args.password)
        except imaplib.IMAP4.error as e:
            out["login"] = str(e)
            print(json.dumps(out))
            return 0
        out["login"] = "OK"
        while True:
            out["select"], out["exists"], out["messages"] = fetch_all(client, args)
            if out["select"] == "OK":
                client.close()
            if len(out["messages"]) >= args.count or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        out["list"] = mailbox_names(client.list('""', '"*"')[1])
        out["lsub"] = mailbox_names(client.lsub('""', '"*"')[1])
        client.logout()
    except (OSError, imaplib.IMAP4.error) as e:
        out["error"] = str(e)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
