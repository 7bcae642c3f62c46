// session.cc - see session.h.
#include "milter/session.h"

#include <algorithm>
#include <stdexcept>

#include "adapters/mime/from_header.h"
#include "core/address.h"
#include "core/authres.h"

namespace chainmail::milter {
namespace {

constexpr std::string_view kAuthResults = "Authentication-Results";

std::string strip_brackets(std::string_view s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

std::string domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : std::string(address.substr(at + 1));
}

// A HELO argument that SPF can check: a domain name, not an address literal.
bool checkable_helo(std::string_view helo) {
  return !helo.empty() && helo.front() != '[' && helo.find('.') != std::string_view::npos &&
         parse_address("x@" + std::string(helo)).address.has_value();
}

std::string spf_text(const std::optional<spf::Verdict>& v) {
  return v ? std::string(spf::to_string(v->result)) : std::string("none");
}

}  // namespace

std::string xtext(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < '!' || u > '~' || c == '+' || c == '=') {
      out += '+';
      out += kHex[u >> 4U];
      out += kHex[u & 0xfU];
    } else {
      out += c;
    }
  }
  return out;
}

Session::Session(RuntimeSource current, const Log& log) : current_(std::move(current)), log_(log) {}

Reply Session::connect(std::string_view hostname, std::string_view address) {
  hostname_ = hostname;
  address_text_ = address;
  address_ = parse_ip(address);
  return Reply::ok();
}

Reply Session::helo(std::string_view name) {
  helo_ = name;
  return Reply::ok();
}

void Session::reset_message() {
  rt_.reset();
  in_message_ = false;
  inbound_ = true;
  queue_id_.clear();
  sender_.clear();
  spf_helo_.reset();
  spf_mail_.reset();
  non_smtp_ = false;
  too_many_headers_ = false;
  deferred_trouble_.clear();
  recipients_.clear();
  headers_.clear();
  verifier_.reset();
  signers_.clear();
  signer_names_.clear();
  dkim_results_.clear();
  dmarc_.reset();
  from_domain_.clear();
  refused_.clear();
}

std::string Session::client_text() const {
  return untrusted(hostname_, 64) + "[" + untrusted(address_text_, 64) + "]";
}

Reply Session::mail_from(std::string_view sender, const std::vector<std::string>& /*esmtp_args*/,
                         const MailMacros& macros) {
  reset_message();
  rt_ = current_();
  if (!rt_) throw std::runtime_error("no runtime");
  in_message_ = true;
  queue_id_ = macros.queue_id;
  sender_ = strip_brackets(sender);

  const auto& m = rt_->config.milter;
  const bool trusted = address_ && in_networks(*address_, rt_->trusted);
  const bool authenticated = !macros.auth_authen.empty();
  const bool signing_daemon =
      !macros.daemon_name.empty() && std::find(m.signing_daemons.begin(), m.signing_daemons.end(),
                                               macros.daemon_name) != m.signing_daemons.end();
  inbound_ = !(trusted || authenticated || signing_daemon);
  non_smtp_ = (macros.daemon_port.empty() || macros.daemon_port == "0") && hostname_ == "localhost" &&
              address_text_ == "127.0.0.1";
  if (!inbound_) return Reply::ok();

  // SPF (RFC 7208 2.3, 2.4): the HELO identity first; with a null sender it is also the MAIL FROM identity.
  const std::string ip = address_text_;
  if (checkable_helo(helo_)) {
    spf_helo_ = rt_->spf.check_helo(ip, helo_);
    if (spf_helo_->result == spf::Result::fail && rt_->config.spf.reject_helo_fail) {
      refused_ = "SPF fail for HELO";
      log_message("reject");
      return Reply::reject(
          "550", "5.7.23",
          "SPF: " + untrusted(helo_, 200) + " does not designate " + ip + " as permitted sender (HELO)");
    }
  }
  if (!sender_.empty()) {
    spf_mail_ = rt_->spf.check_mail_from(ip, helo_, sender_);
  } else if (spf_helo_) {
    spf_mail_ = spf_helo_;
  }
  if (spf_mail_) {
    if (spf_mail_->result == spf::Result::fail && rt_->config.spf.reject_mail_from_fail) {
      refused_ = "SPF fail";
      log_message("reject");
      std::string text =
          "SPF: " + untrusted(spf_mail_->domain, 200) + " does not designate " + ip + " as permitted sender";
      if (!spf_mail_->explanation.empty()) text += " (" + untrusted(spf_mail_->explanation, 200) + ")";
      return Reply::reject("550", "5.7.23", text);
    }
    if (spf_mail_->result == spf::Result::temperror && m.tempfail_on_dns_error) {
      refused_ = "SPF temperror";
      log_message("tempfail");
      return Reply::tempfail("451", "4.7.24",
                             "SPF: temporary DNS failure checking " + untrusted(spf_mail_->domain, 200));
    }
  }
  return Reply::ok();
}

Reply Session::rcpt(std::string_view recipient, const std::vector<std::string>& esmtp_args) {
  if (!rt_) throw std::runtime_error("RCPT before MAIL");
  if (recipients_.size() >= static_cast<std::size_t>(rt_->config.milter.max_recipients))
    return Reply::tempfail("452", "4.5.3", "Too many recipients");
  Recipient r{strip_brackets(recipient), esmtp_args, {}};
  const std::string domain = domain_of(r.address);
  const auto cls = rt_->router.classify(domain);
  if (cls == Router::DomainClass::mailbox || cls == Router::DomainClass::service) {
    if (inbound_) {
      return Reply::reject(
          "550", "5.7.1",
          "<" + untrusted(r.address, 200) + ">: internal destination, not accepted from here");
    }
    recipients_.push_back(std::move(r));
    return Reply::ok();
  }
  if (cls == Router::DomainClass::foreign) {  // relay rules decide; not ours to route
    recipients_.push_back(std::move(r));
    return Reply::ok();
  }
  auto result = rt_->router.route(r.address, Router::Explain::no);
  switch (result.outcome) {
    case Outcome::routed:
      r.targets = std::move(result.targets);
      recipients_.push_back(std::move(r));
      return Reply::ok();
    case Outcome::trouble:
      if (non_smtp_) {
        deferred_trouble_ = result.reason;
        recipients_.push_back(std::move(r));
        return Reply::ok();
      }
      log_.warning(queue_label() + ": rcpt <" + untrusted(r.address) + ">: " + untrusted(result.reason, 300) +
                   ": 451 4.3.0");
      return Reply::tempfail(
          "451", "4.3.0",
          "<" + untrusted(r.address, 200) + ">: temporary directory failure, try again later");
    default:
      if (non_smtp_) {  // left to Postfix, which bounces it to the local sender
        recipients_.push_back(std::move(r));
        return Reply::ok();
      }
      log_.info(queue_label() + ": rcpt <" + untrusted(r.address) + ">: unknown: 550 5.1.1");
      return Reply::reject("550", "5.1.1",
                           "<" + untrusted(r.address, 200) +
                               ">: Recipient address rejected: "
                               "User unknown");
  }
}

Reply Session::header(std::string_view name, std::string_view value) {
  if (!rt_) throw std::runtime_error("header before MAIL");
  // The refusal waits for the end of the headers: the MTA then need not wait for a reply to every header.
  if (headers_.size() >= static_cast<std::size_t>(rt_->config.milter.max_headers)) {
    too_many_headers_ = true;
    return Reply::ok();
  }
  headers_.push_back({std::string(name), std::string(value)});
  return Reply::ok();
}

Reply Session::end_of_headers() {
  if (!rt_) throw std::runtime_error("EOH before MAIL");
  if (too_many_headers_) {
    refused_ = "more than " + std::to_string(rt_->config.milter.max_headers) + " header fields";
    log_message("reject");
    return Reply::reject("552", "5.3.4", "Too many header fields");
  }
  // The From author decides DMARC (inbound) and the signing key (outbound).
  std::size_t from_fields = 0;
  std::vector<AuthorAddress> authors;
  for (const auto& h : headers_) {
    if (!iequals(h.name, "From")) continue;
    ++from_fields;
    auto a = parse_from(h.value);
    authors.insert(authors.end(), a.begin(), a.end());
  }
  const bool one_author = from_fields == 1 && authors.size() == 1 && !authors.front().domain.empty();
  if (one_author) from_domain_ = ascii_lower(authors.front().domain);

  if (inbound_) {
    if (!one_author) {
      refused_ = "From: has " + std::to_string(authors.size()) + " authors in " +
                 std::to_string(from_fields) + " fields";
      log_message("reject");
      return Reply::reject("550", "5.7.1", "Message must have exactly one From: author (RFC 7489 6.6.1)");
    }
    verifier_ = std::make_unique<dkim::Verifier>(rt_->dkim);
    for (const auto& h : headers_) verifier_->header(h.name, h.value);
    verifier_->end_of_headers();
    return Reply::ok();
  }
  if (!one_author) return Reply::ok();  // nothing to sign for
  if (const auto* keys = rt_->keys_for(from_domain_)) {
    for (const auto& key : *keys) {
      auto signer = std::make_unique<dkim::Signer>(rt_->dkim, key);
      for (const auto& h : headers_) signer->header(h.name, h.value);
      signer->end_of_headers();
      signers_.push_back(std::move(signer));
      signer_names_.push_back("d=" + key.domain + " s=" + key.selector +
                              " a=" + std::string(dkim::to_string(key.algorithm)));
    }
  }
  return Reply::ok();
}

Reply Session::body(std::string_view chunk) {
  if (verifier_) verifier_->body(chunk);
  for (auto& s : signers_) s->body(chunk);
  return Reply::ok();
}

Reply Session::validate_at_end(Actions& actions, std::string& verdict) {
  dkim_results_ = verifier_ ? verifier_->finish() : std::vector<dkim::Signature>{};

  dmarc::Input in;
  in.client_ip = address_text_;
  in.header_from_domain = from_domain_;
  if (spf_mail_) {
    in.spf = {sender_.empty() ? helo_ : domain_of(sender_), std::string(spf::to_string(spf_mail_->result))};
  }
  for (const auto& s : dkim_results_) in.dkim.push_back({s.domain, std::string(dkim::to_string(s.result))});
  dmarc_ = rt_->dmarc.evaluate(in);

  // Our Authentication-Results: spf, every dkim signature, dmarc.
  std::vector<authres::MethodResult> results;
  {
    authres::MethodResult spf{"spf", spf_text(spf_mail_), "", {}, ""};
    if (!sender_.empty()) {
      spf.properties.push_back({"smtp", "mailfrom", sender_});
    } else if (!helo_.empty()) {
      spf.properties.push_back({"smtp", "helo", helo_});
    }
    results.push_back(std::move(spf));
  }
  if (dkim_results_.empty()) results.push_back({"dkim", "none", "", {}, ""});
  for (const auto& s : dkim_results_) {
    authres::MethodResult r{"dkim", std::string(dkim::to_string(s.result)), "", {}, s.reason};
    r.properties.push_back({"header", "d", s.domain});
    r.properties.push_back({"header", "s", s.selector});
    r.properties.push_back({"header", "a", s.algorithm});
    if (!s.header_b.empty()) r.properties.push_back({"header", "b", s.header_b});
    results.push_back(std::move(r));
  }
  results.push_back({"dmarc",
                     std::string(dmarc::to_string(dmarc_->result)),
                     "",
                     {{"header", "from", from_domain_}},
                     "p=" + std::string(dmarc::to_string(dmarc_->policy))});

  // Temporary DNS trouble must not turn into a verdict: a fail that a working DNS could have made a pass
  // waits instead (Postfix retries), when configured so.
  const bool dkim_trouble = std::any_of(dkim_results_.begin(), dkim_results_.end(),
                                        [](const auto& s) { return s.result == dkim::Result::temperror; });
  const bool spf_trouble = spf_mail_ && spf_mail_->result == spf::Result::temperror;
  if (rt_->config.milter.tempfail_on_dns_error &&
      (dmarc_->result == dmarc::Result::temperror ||
       (dmarc_->result == dmarc::Result::fail && dmarc_->policy != dmarc::Policy::none &&
        (dkim_trouble || spf_trouble)))) {
    verdict = "tempfail";
    refused_ = "DMARC undecidable: DNS trouble";
    return Reply::tempfail("451", "4.7.5", "DMARC: temporary DNS failure, try again later");
  }
  if (dmarc_->result == dmarc::Result::fail && dmarc_->policy == dmarc::Policy::reject &&
      rt_->config.dmarc.enforce_reject) {
    verdict = "reject";
    refused_ = "DMARC p=reject";
    return Reply::reject("550", "5.7.1",
                         "DMARC: " + untrusted(from_domain_, 200) +
                             " rejects unauthenticated mail: " + untrusted(dmarc_->reason, 200));
  }

  // Remove forgeries of our header (and unparseable ones) from the last to the first, so the indices of
  // the earlier ones stay right.
  std::vector<int> doomed;
  int index = 0;
  for (const auto& h : headers_) {
    if (!iequals(h.name, kAuthResults)) continue;
    ++index;
    if (authres::claims_authserv_id(h.value, rt_->authserv_id) || !authres::parse(h.value))
      doomed.push_back(index);
  }
  for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
    if (!actions.delete_header(std::string(kAuthResults), *it))
      throw std::runtime_error("MTA refused to delete a header");
  }
  if (!actions.insert_header(0, std::string(kAuthResults), " " + authres::format(rt_->authserv_id, results)))
    throw std::runtime_error("MTA refused to insert Authentication-Results");

  if (dmarc_->result == dmarc::Result::fail && dmarc_->policy == dmarc::Policy::quarantine &&
      rt_->config.dmarc.enforce_quarantine) {
    if (!actions.quarantine("DMARC p=quarantine: " + from_domain_))
      throw std::runtime_error("MTA refused to quarantine");
    verdict = "quarantine";
  }
  return Reply::ok();
}

Reply Session::sign(Actions& actions) {
  for (auto& s : signers_) {
    if (!actions.insert_header(0, "DKIM-Signature", s->finish()))
      throw std::runtime_error("MTA refused to insert DKIM-Signature");
  }
  return Reply::ok();
}

Reply Session::apply_routes(Actions& actions) {
  for (const auto& r : recipients_) {
    if (r.targets.empty()) continue;
    std::string notify;
    for (const auto& arg : r.esmtp_args) {
      if (arg.size() > 7 && iequals(std::string_view(arg).substr(0, 7), "NOTIFY=")) notify = arg;
    }
    const std::string orcpt = "ORCPT=rfc822;" + xtext(r.address);
    const std::string args = notify.empty() ? orcpt : notify + " " + orcpt;
    if (!actions.delete_recipient("<" + r.address + ">")) throw std::runtime_error("MTA refused delrcpt");
    for (const auto& t : r.targets) {
      if (!actions.add_recipient("<" + t.address + ">", args))
        throw std::runtime_error("MTA refused addrcpt");
    }
  }
  return Reply::ok();
}

Reply Session::end_of_message(Actions& actions, std::string_view queue_id) {
  if (!rt_) throw std::runtime_error("EOM before MAIL");
  if (!queue_id.empty()) queue_id_ = queue_id;
  std::string verdict = "accept";
  Reply reply = Reply::ok();
  if (!deferred_trouble_.empty()) {
    refused_ = "directory trouble: " + untrusted(deferred_trouble_, 200);
    log_message("tempfail");
    reset_message();
    return Reply::tempfail("451", "4.3.0", "Temporary directory failure, try again later");
  }
  if (inbound_) {
    reply = validate_at_end(actions, verdict);
  } else {
    reply = sign(actions);
  }
  if (reply.status == Reply::Status::proceed) apply_routes(actions);
  log_message(verdict);
  reset_message();
  return reply;
}

void Session::abort() {
  if (in_message_ && !recipients_.empty()) log_message("aborted");
  reset_message();
}

std::string Session::queue_label() const {
  return queue_id_.empty() ? std::string("NOQUEUE") : untrusted(queue_id_, 32);
}

void Session::log_message(std::string_view verdict) {
  std::string line = (queue_id_.empty() ? std::string("NOQUEUE") : untrusted(queue_id_, 32)) +
                     ": client=" + client_text() + " helo=" + untrusted(helo_, 64) + " from=<" +
                     untrusted(sender_) + ">";
  if (inbound_) {
    line += " spf_helo=" + spf_text(spf_helo_) + " spf=" + spf_text(spf_mail_);
    line += " dkim=";
    if (dkim_results_.empty()) line += "none";
    for (std::size_t i = 0; i < dkim_results_.size(); ++i) {
      const auto& s = dkim_results_[i];
      line += (i != 0 ? "," : "") + std::string(dkim::to_string(s.result)) + "(d=" + untrusted(s.domain, 64) +
              " s=" + untrusted(s.selector, 64) + (s.reason.empty() ? "" : " " + untrusted(s.reason, 64)) +
              ")";
    }
    line += " dmarc=";
    line += dmarc_ ? std::string(dmarc::to_string(dmarc_->result)) +
                         "(p=" + std::string(dmarc::to_string(dmarc_->policy)) +
                         " from=" + untrusted(from_domain_, 64) + ")"
                   : "none";
  } else {
    line += " outbound signed=";
    if (signer_names_.empty()) line += "none";
    for (std::size_t i = 0; i < signer_names_.size(); ++i) line += (i != 0 ? "," : "") + signer_names_[i];
  }
  line += " verdict=" + std::string(verdict);
  if (!refused_.empty()) line += " (" + refused_ + ")";
  for (const auto& r : recipients_) {
    line += " rcpt=<" + untrusted(r.address) + ">";
    if (r.targets.empty()) continue;
    line += "->";
    for (std::size_t i = 0; i < r.targets.size() && i < 20; ++i) {
      line += (i != 0 ? "," : "") + std::string(target_kind_name(r.targets[i].kind)) + ":" +
              untrusted(r.targets[i].address);
    }
    if (r.targets.size() > 20) line += ",...(" + std::to_string(r.targets.size()) + " targets)";
  }
  log_.info(line);
}

}  // namespace chainmail::milter
