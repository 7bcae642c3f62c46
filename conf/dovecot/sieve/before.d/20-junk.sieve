# 20-junk.sieve - global Sieve script run before every user's own (conf.d/90-sieve.conf, sieve_before):
# mail that failed DMARC according to chainmail's own Authentication-Results header (vnd.chainmail `authres`,
# which ignores every other Authentication-Results field) goes to Junk, created on first use. Such mail is
# only delivered at all when the sender's policy is p=none or quarantine was overridden locally; p=reject is
# refused by the milter. `stop` ends the run: the user's script does not move it out of Junk.
# Installed as /etc/dovecot/sieve/before.d/20-junk.sieve and compiled with `sievec /etc/dovecot/sieve/before.d`.
require ["vnd.chainmail", "fileinto", "mailbox"];

if authres :dmarc "fail" {
  fileinto :create "Junk";
  stop;
}
