-- directory_down.lua: with slapd stopped (the test runner stops it first), a recipient on a hosted domain is
-- answered with a temporary failure at RCPT (451 4.3.0 in docs/milter.md; miltertest shows the reply type
-- only, the code is checked end to end in milter_outage_test.cc), never accepted and never refused.
-- A recipient elsewhere needs no directory and is still accepted.
dofile(lib)

local conn = open_session("mx")
mail_from(conn, "sender@pass.example", "MTDOWN1")
expect_reply(conn, "MAIL FROM sender@pass.example", SMFIR_CONTINUE)
rcpt_to(conn, "alice@pydis.wtf")
expect_reply(conn, "RCPT alice@pydis.wtf with the directory down", SMFIR_REPLYCODE, SMFIR_TEMPFAIL)
rcpt_to(conn, "someone@example.org")
expect_reply(conn, "RCPT someone@example.org (not hosted)", SMFIR_CONTINUE)
mt.disconnect(conn)
