-- authres.lua: validation of an inbound message (trusted_networks = [] in the test configuration, so
-- 127.0.0.1 is validated). SPF passes for pass.example from 127.0.0.1 (the test DNS). Our
-- Authentication-Results is inserted; an incoming one that claims our authserv-id ("pydis.wtf", the default:
-- domains.main) is deleted; another ADMD's is kept.
dofile(lib)

-- 1. A forged field with our id, and a foreign one.
local conn = open_session("mx")
mail_from(conn, "sender@pass.example", "MTAUTH1")
expect_reply(conn, "MAIL FROM sender@pass.example", SMFIR_CONTINUE)
rcpt_to(conn, "alice@pydis.wtf")
expect_reply(conn, "RCPT alice@pydis.wtf", SMFIR_CONTINUE)
local headers = standard_headers("sender@pass.example", "alice@pydis.wtf")
table.insert(headers, {"Authentication-Results", "pydis.wtf; spf=pass smtp.mailfrom=forged@pass.example"})
table.insert(headers, {"Authentication-Results", "other.example; spf=pass smtp.mailfrom=sender@pass.example"})
send_message(conn, headers)
expect_reply(conn, "end of message", SMFIR_CONTINUE, SMFIR_ACCEPT)

check(header_added(conn, "Authentication-Results"), "no Authentication-Results added")
local ar = mt.getheader(conn, "Authentication-Results", 0)
check(ar ~= nil, "cannot read the added Authentication-Results")
check(string.find(ar, "pydis.wtf;", 1, true) ~= nil, "Authentication-Results without our authserv-id: " .. ar)
check(string.find(ar, "spf=pass", 1, true) ~= nil, "SPF did not pass: " .. ar)
check(string.find(ar, "smtp.mailfrom=sender@pass.example", 1, true) ~= nil, "no smtp.mailfrom: " .. ar)
check(string.find(ar, "dmarc=pass", 1, true) ~= nil, "DMARC (SPF-aligned) did not pass: " .. ar)
check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"), "the forged Authentication-Results stayed")
mt.disconnect(conn)

-- 2. Only a foreign field: nothing is deleted.
conn = open_session("mx")
mail_from(conn, "sender@pass.example", "MTAUTH2")
expect_reply(conn, "MAIL FROM sender@pass.example", SMFIR_CONTINUE)
rcpt_to(conn, "alice@pydis.wtf")
expect_reply(conn, "RCPT alice@pydis.wtf", SMFIR_CONTINUE)
headers = standard_headers("sender@pass.example", "alice@pydis.wtf")
table.insert(headers, {"Authentication-Results", "other.example; spf=pass smtp.mailfrom=sender@pass.example"})
send_message(conn, headers)
expect_reply(conn, "end of message", SMFIR_CONTINUE, SMFIR_ACCEPT)
check(header_added(conn, "Authentication-Results"), "no Authentication-Results added")
check(not mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"), "a foreign Authentication-Results was deleted")
mt.disconnect(conn)
