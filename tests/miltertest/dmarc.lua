-- dmarc.lua: DMARC policy at end of message. From: a p=reject domain with SPF passing for another domain and no
-- signature: 550 5.7.1 (dmarc.enforce_reject). From: a p=quarantine domain: quarantined (dmarc.enforce_quarantine),
-- which Postfix turns into its hold queue.
dofile(lib)

local conn = open_session("mx")
mail_from(conn, "bounces@pass.example", "MTDMARC1")
expect_reply(conn, "MAIL FROM bounces@pass.example", SMFIR_CONTINUE)
rcpt_to(conn, "alice@pydis.wtf")
expect_reply(conn, "RCPT alice@pydis.wtf", SMFIR_CONTINUE)
send_message(conn, standard_headers("ceo@reject.example", "alice@pydis.wtf"))
-- A reply with its own code (SMFIR_REPLYCODE). MT_SMTPREPLY compares the whole reply including its text, which
-- is the milter's to word: the code, 550 5.7.1, is checked end to end in milter_flow_test.cc.
expect_reply(conn, "end of message (p=reject)", SMFIR_REPLYCODE)
mt.disconnect(conn)

conn = open_session("mx")
mail_from(conn, "bounces@pass.example", "MTDMARC2")
expect_reply(conn, "MAIL FROM bounces@pass.example", SMFIR_CONTINUE)
rcpt_to(conn, "alice@pydis.wtf")
expect_reply(conn, "RCPT alice@pydis.wtf", SMFIR_CONTINUE)
send_message(conn, standard_headers("news@quarantine.example", "alice@pydis.wtf"))
expect_reply(conn, "end of message (p=quarantine)", SMFIR_CONTINUE, SMFIR_ACCEPT)
check(mt.eom_check(conn, MT_QUARANTINE), "p=quarantine fail was not quarantined")
local ar = mt.getheader(conn, "Authentication-Results", 0)
check(ar ~= nil and string.find(ar, "dmarc=fail", 1, true) ~= nil, "no dmarc=fail verdict: " .. tostring(ar))
mt.disconnect(conn)

-- SPF fail at MAIL FROM (spf.reject_mail_from_fail): refused before any recipient.
conn = open_session("mx")
mail_from(conn, "sender@spf-fail.example", "MTDMARC3")
expect_reply(conn, "MAIL FROM sender@spf-fail.example", SMFIR_REPLYCODE, SMFIR_REJECT)
mt.disconnect(conn)
