-- common.lua: what the chainmail-milter miltertest scripts share (loaded with dofile(lib); miltertest -s
-- runs one file). The scripts play Postfix's part of the milter protocol against a running chainmail-milter;
-- tests/integration/milter_miltertest_test.cc starts slapd, unbound and the milter and runs each script with
--   miltertest -s SCRIPT -D sock=inet:PORT@127.0.0.1 -D lib=.../common.lua
-- A failed check prints "FAIL: ..." and raises a Lua error, which makes miltertest exit non-zero (miltertest
-- 1.0 does not print the error of a failing script itself).

-- Prints `what` with the caller's script line and raises it.
function fail(what, level)
  local info = debug.getinfo((level or 1) + 1, "Sl")
  local where = info and (info.short_src .. ":" .. tostring(info.currentline)) or "?"
  print("FAIL: " .. where .. ": " .. what)
  error(what, (level or 1) + 1)
end

-- Fails with `what` unless `cond` holds.
function check(cond, what)
  if not cond then
    fail(what, 2)
  end
end

local reply_names = {}
for _, name in ipairs({"SMFIR_ACCEPT", "SMFIR_CONTINUE", "SMFIR_DISCARD", "SMFIR_REJECT", "SMFIR_TEMPFAIL",
                       "SMFIR_REPLYCODE", "SMFIR_SKIP"}) do
  if _G[name] ~= nil then
    reply_names[_G[name]] = name
  end
end

local function reply_name(r)
  return reply_names[r] or tostring(r)
end

-- The milter's last reply must be one of the SMFIR_* values given.
function expect_reply(conn, what, ...)
  local got = mt.getreply(conn)
  local wanted = {}
  for _, want in ipairs({...}) do
    if got == want then
      return got
    end
    table.insert(wanted, reply_name(want))
  end
  fail(string.format("%s: milter replied %s, expected %s", what, reply_name(got), table.concat(wanted, " or ")), 2)
end

-- Connects, sends the connection and HELO steps as Postfix would (with the macros chainmail-milter reads) and
-- returns the connection. daemon: the {daemon_name} macro ("mx" inbound, "ORIGINATING" to sign).
function open_session(daemon, helo)
  local conn = mt.connect(sock, 40, 0.05)
  check(conn ~= nil, "cannot connect to " .. sock)
  mt.macro(conn, SMFIC_CONNECT, "j", "mx.chainmail.test", "{daemon_name}", daemon)
  check(mt.conninfo(conn, "mail.pass.example", "127.0.0.1") == nil, "conninfo failed")
  expect_reply(conn, "connect", SMFIR_CONTINUE)
  check(mt.helo(conn, helo or "mail.pass.example") == nil, "helo failed")
  expect_reply(conn, "helo", SMFIR_CONTINUE)
  return conn
end

-- MAIL FROM with the queue id macro; `auth` sets {auth_authen} (a SASL login).
function mail_from(conn, sender, queue_id, auth)
  if auth then
    mt.macro(conn, SMFIC_MAIL, "i", queue_id, "{auth_authen}", auth)
  else
    mt.macro(conn, SMFIC_MAIL, "i", queue_id)
  end
  check(mt.mailfrom(conn, "<" .. sender .. ">") == nil, "mailfrom failed")
end

function rcpt_to(conn, rcpt)
  mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", rcpt)
  check(mt.rcptto(conn, "<" .. rcpt .. ">") == nil, "rcptto " .. rcpt .. " failed")
end

-- Headers (a list of {name, value}), end of headers, a one-line body, end of message.
function send_message(conn, headers)
  for _, h in ipairs(headers) do
    check(mt.header(conn, h[1], h[2]) == nil, "header " .. h[1] .. " failed")
    expect_reply(conn, "header " .. h[1], SMFIR_CONTINUE)
  end
  check(mt.eoh(conn) == nil, "eoh failed")
  expect_reply(conn, "eoh", SMFIR_CONTINUE)
  check(mt.bodystring(conn, "Hello from miltertest.\r\n") == nil, "body failed")
  expect_reply(conn, "body", SMFIR_CONTINUE, SMFIR_SKIP)
  check(mt.eom(conn) == nil, "eom failed")
end

-- A recipient deleted at end of message: libmilter passes the address as given, with or without <>.
function deleted(conn, rcpt)
  return mt.eom_check(conn, MT_RCPTDELETE, "<" .. rcpt .. ">") or mt.eom_check(conn, MT_RCPTDELETE, rcpt)
end

-- Header fields added at end of message, by insertion (smfi_insheader) or appended (smfi_addheader).
function header_added(conn, name)
  return mt.eom_check(conn, MT_HDRINSERT, name) or mt.eom_check(conn, MT_HDRADD, name)
end

function standard_headers(from, to)
  return {
    {"From", from},
    {"To", to},
    {"Subject", "miltertest"},
    {"Date", "Wed, 25 Nov 2026 12:00:00 +0000"},
    {"Message-ID", "<" .. tostring(os.time()) .. "." .. tostring(math.random(1000000)) .. "@pass.example>"},
  }
end
