-- signing.lua: mail from the signing daemon ({daemon_name} = ORIGINATING) or from a SASL login
-- ({auth_authen}) is signed with the From domain's key ([dkim.signing] "pydis.wtf", selector mail2026) and not
-- validated: no Authentication-Results is added.
dofile(lib)

local function signed_session(daemon, auth, queue_id)
  local conn = open_session(daemon)
  mail_from(conn, "alice@pydis.wtf", queue_id, auth)
  expect_reply(conn, "MAIL FROM alice@pydis.wtf", SMFIR_CONTINUE)
  rcpt_to(conn, "someone@example.org")
  expect_reply(conn, "RCPT someone@example.org", SMFIR_CONTINUE)
  send_message(conn, standard_headers("Alice <alice@pydis.wtf>", "someone@example.org"))
  expect_reply(conn, "end of message", SMFIR_CONTINUE, SMFIR_ACCEPT)
  check(header_added(conn, "DKIM-Signature"), queue_id .. ": no DKIM-Signature added")
  local sig = mt.getheader(conn, "DKIM-Signature", 0)
  check(sig ~= nil, queue_id .. ": cannot read the DKIM-Signature")
  check(string.find(sig, "d=pydis.wtf", 1, true) ~= nil, queue_id .. ": not signed for pydis.wtf: " .. sig)
  check(string.find(sig, "s=mail2026", 1, true) ~= nil, queue_id .. ": not signed with mail2026: " .. sig)
  check(not header_added(conn, "Authentication-Results"), queue_id .. ": outbound mail was validated")
  mt.disconnect(conn)
end

signed_session("ORIGINATING", nil, "MTSIGN1")
signed_session("mx", "alice", "MTSIGN2")
