# 10-duplicates.sieve - global Sieve script run before every user's own (conf.d/90-sieve.conf,
# sieve_before): a message this mailbox has already received (same Message-ID, RFC 7352 "duplicate", kept
# for sieve_duplicate_period) is dropped, so a post sent to two lists a user is on, or retried by a remote
# MTA after a lost reply, arrives once. `stop` ends the run: the user's script does not see the copy.
# Installed as /etc/dovecot/sieve/before.d/10-duplicates.sieve and compiled with
# `sievec /etc/dovecot/sieve/before.d` (the delivery runs as the user and cannot write there).
require ["duplicate"];

if duplicate {
  discard;
  stop;
}
