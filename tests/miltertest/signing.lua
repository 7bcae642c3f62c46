-- signing.lua: mail from the signing daemon ({daemon_name} = ORIGINATING) or from a SASL login
-- ({auth_authen}) is signed with each of the From domain's keys ([dkim.signing] "pydis.wtf": selectors mail2026,
-- RSA, and ed2026, Ed25519) and not validated: no Authentication-Results is added.
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
  -- One signature per configured key: RSA (mail2026) and Ed25519 (ed2026), in either order.
  local sigs = {}
  for i = 0, 1 do
    local sig = mt.getheader(conn, "DKIM-Signature", i)
    check(sig ~= nil, queue_id .. ": DKIM-Signature " .. i .. " missing")
    check(string.find(sig, "d=pydis.wtf", 1, true) ~= nil, queue_id .. ": not signed for pydis.wtf: " .. sig)
    sigs[#sigs + 1] = sig
  end
  check(mt.getheader(conn, "DKIM-Signature", 2) == nil, queue_id .. ": more than two DKIM-Signatures")
  local both = table.concat(sigs, "\n")
  check(string.find(both, "s=mail2026", 1, true) ~= nil, queue_id .. ": no signature with mail2026: " .. both)
  check(string.find(both, "s=ed2026", 1, true) ~= nil, queue_id .. ": no signature with ed2026: " .. both)
  check(not header_added(conn, "Authentication-Results"), queue_id .. ": outbound mail was validated")
  mt.disconnect(conn)
end

signed_session("ORIGINATING", nil, "MTSIGN1")
signed_session("mx", "alice", "MTSIGN2")
