-- routing.lua: recipients at RCPT and their rewriting at end of message (docs/milter.md, docs/routing.md).
-- An unknown recipient on a hosted domain is refused at RCPT; known ones and other domains are accepted; at
-- end of message each hosted recipient is deleted (and replaced by its targets: see below), and a recipient
-- elsewhere is left alone.
dofile(lib)

-- Trusted-looking session from the signing daemon: routing does not depend on validation.
local conn = open_session("ORIGINATING")
mail_from(conn, "alice@pydis.wtf", "MTROUTE1")
expect_reply(conn, "MAIL FROM", SMFIR_CONTINUE)

rcpt_to(conn, "nobody-here@pydis.wtf")
expect_reply(conn, "RCPT nobody-here@pydis.wtf (unknown)", SMFIR_REPLYCODE, SMFIR_REJECT)
rcpt_to(conn, "devops@pydis.wtf")
expect_reply(conn, "RCPT devops@pydis.wtf (group)", SMFIR_CONTINUE)
rcpt_to(conn, "Dave@pydis.com")
expect_reply(conn, "RCPT Dave@pydis.com (user, alias domain)", SMFIR_CONTINUE)
rcpt_to(conn, "someone@example.org")
expect_reply(conn, "RCPT someone@example.org (not hosted)", SMFIR_CONTINUE)

send_message(conn, standard_headers("alice@pydis.wtf", "devops@pydis.wtf"))
expect_reply(conn, "end of message", SMFIR_CONTINUE, SMFIR_ACCEPT)

check(deleted(conn, "devops@pydis.wtf"), "devops@pydis.wtf was not deleted")
check(deleted(conn, "Dave@pydis.com"), "Dave@pydis.com was not deleted")
check(not deleted(conn, "someone@example.org"), "someone@example.org (not hosted) was deleted")
check(not deleted(conn, "nobody-here@pydis.wtf"), "the refused recipient was deleted")
-- The targets are added with smfi_addrcpt_par (ORCPT=rfc822;<original>), which miltertest 1.3 does not record
-- (MT_RCPTADD matches SMFIR_ADDRCPT only): the runner reads them from the milter's log line for MTROUTE1, and
-- milter_flow_test.cc shows them in Postfix's queue with their ORCPT.
mt.disconnect(conn)
