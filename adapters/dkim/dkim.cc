// dkim.cc - see dkim.h. How libopendkim 2.11.0~beta2 is driven, and why:
//
// - Headers go in as "Name:value" with folding normalized to CRLF (the milter may hand us bare LF). We do not
//   set DKIM_LIBFLAGS_FIXCRLF: its header path records the pre-fix length (dkim.c, dkim_header), and the body
//   arrives with CRLF already, so fixing it would only cost a copy.
// - Keys: dkim_set_key_lookup() routes every lookup through dns::Resolver. The callback can only answer
//   "record" or "not found" without aborting the whole message (DKIM_CBSTAT_TRYAGAIN/ERROR make dkim_eoh()
//   stop at that signature), so the callback answers "not found" on trouble and notes the real outcome for
//   that signature; finish() applies the note. libopendkim's own resolver gets a query function that refuses,
//   so a code path we did not foresee fails closed instead of sending DNS of its own.
// - Signature limits and refusals (over max_signatures, malformed, rsa-sha1) are applied in the prescreen
//   callback with dkim_sig_ignore(): an ignored signature costs no DNS query and no public-key operation.
// - DKIM_LIBFLAGS_BADSIGHANDLES keeps a handle for a DKIM-Signature that does not parse, so it is reported
//   (permerror) rather than silently dropped, and siglist index i is the i-th DKIM-Signature field.
// - Header signatures are checked at end_of_headers() (libopendkim's default), body hashes at finish().
#include "adapters/dkim/dkim.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "adapters/dkim/opendkim_compat.h"
#include "adapters/dns/rdata.h"
#include "core/address.h"

namespace chainmail::dkim {
namespace {

constexpr const char* kSignatureHeader = "DKIM-Signature";
constexpr std::size_t kHeaderBLength = 8;
constexpr unsigned kEd25519Bits = 256;
constexpr unsigned kMinSigningRsaBits = 1024;  // RFC 8301 section 3.2
constexpr std::size_t kMaxDnsName = 253;
constexpr std::size_t kMaxDnsLabel = 63;

// The RFC 6376 section 5.4.1 set (libopendkim's dkim_should_signhdrs) plus Message-ID and the MIME fields,
// whose change would let a replayed body be reinterpreted.
const char* const kSignHeaders[] = {
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    nullptr,
};
const char* const kOversignHeaders[] = {"from", nullptr};

struct LibClose {
  void operator()(DKIM_LIB* lib) const noexcept { dkim_close(lib); }
};
struct DkimFree {
  void operator()(DKIM* dkim) const noexcept { dkim_free(dkim); }
};
using DkimHandle = std::unique_ptr<DKIM, DkimFree>;
struct BioFree {
  void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

u_char* as_uchar(std::string& s) {
  return reinterpret_cast<u_char*>(s.data());
}
const u_char* as_uchar(const char* s) {
  return reinterpret_cast<const u_char*>(s);
}
std::string text(const u_char* s) {
  return s == nullptr ? std::string() : reinterpret_cast<const char*>(s);
}

std::string tag_value(DKIM_SIGINFO* sig, const char* tag) {
  std::string name = tag;  // dkim_sig_gettagvalue() only reads the tag name; its prototype lacks const
  return text(dkim_sig_gettagvalue(sig, false, as_uchar(name)));
}

std::string library_error(DKIM* dkim, DKIM_STAT status) {
  std::string out = dkim_getresultstr(status);
  const char* detail = dkim == nullptr ? nullptr : dkim_geterror(dkim);
  if (detail != nullptr && *detail != '\0') {
    out += ": ";
    out += detail;
  }
  return out;
}

// Statuses that mean libopendkim itself failed (as opposed to describing the message).
bool is_library_failure(DKIM_STAT status) {
  switch (status) {
    case DKIM_STAT_NORESOURCE:
    case DKIM_STAT_INTERNAL:
    case DKIM_STAT_INVALID:
    case DKIM_STAT_NOTIMPLEMENT:
    case DKIM_STAT_CBREJECT:
    case DKIM_STAT_CBINVALID:
    case DKIM_STAT_CBTRYAGAIN:
    case DKIM_STAT_CBERROR:
    case DKIM_STAT_SIGGEN:
      return true;
    default:
      return false;
  }
}

// "Name:value" as libopendkim wants it: folding as CRLF, no trailing line end.
void build_field(std::string& out, std::string_view name, std::string_view value) {
  out.clear();
  out.reserve(name.size() + 1 + value.size() + 8);
  out.append(name);
  out.push_back(':');
  if (value.find('\n') == std::string_view::npos) {
    out.append(value);
  } else {
    char prev = '\0';
    for (const char c : value) {
      if (c == '\n' && prev != '\r') out.push_back('\r');
      out.push_back(c);
      prev = c;
    }
  }
  while (out.back() == '\n' || out.back() == '\r') out.pop_back();
}

// RFC 6376 section 3.2: a tag-list naming a tag twice is invalid as a whole. libopendkim keeps the last
// value, another verifier might keep the first; refusing the signature removes the ambiguity.
bool has_duplicate_tag(std::string_view tag_list) {
  std::vector<std::string_view> names;
  std::size_t pos = 0;
  while (pos < tag_list.size()) {
    std::size_t end = tag_list.find(';', pos);
    if (end == std::string_view::npos) end = tag_list.size();
    const std::string_view spec = tag_list.substr(pos, end - pos);
    const std::size_t eq = spec.find('=');
    if (eq != std::string_view::npos) {
      std::string_view name = spec.substr(0, eq);
      const auto first = name.find_first_not_of(" \t\r\n");
      const auto last = name.find_last_not_of(" \t\r\n");
      name = first == std::string_view::npos ? std::string_view() : name.substr(first, last - first + 1);
      if (std::find(names.begin(), names.end(), name) != names.end()) return true;
      names.push_back(name);
    }
    pos = end + 1;
  }
  return false;
}

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxDnsName) return false;
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > kMaxDnsLabel || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return false;
    }
  }
  return label != 0;
}

// libopendkim's DNS hooks, installed so that its own resolver can never run (see the file comment).
int dns_init_refuse(void** service) noexcept {
  *service = nullptr;
  return 0;
}
int dns_start_refuse(void* /*service*/, int /*type*/, unsigned char* /*query*/, unsigned char* /*buf*/,
                     std::size_t /*buflen*/, void** /*handle*/) noexcept {
  return DKIM_DNS_ERROR;
}

DKIM_CBSTAT key_lookup_shim(DKIM* dkim, DKIM_SIGINFO* sig, u_char* buf, std::size_t buflen) noexcept;
DKIM_CBSTAT prescreen_shim(DKIM* dkim, DKIM_SIGINFO** sigs, int nsigs) noexcept;

template <typename T>
void set_option(DKIM_LIB* lib, dkim_opts_t option, T* value, std::size_t size, const char* what) {
  if (dkim_options(lib, DKIM_OP_SETOPT, option, const_cast<void*>(static_cast<const void*>(value)), size) !=
      DKIM_STAT_OK)
    throw std::runtime_error(std::string("dkim: cannot set libopendkim option ") + what);
}

// for_signing: also refuse what must not sign (RSA under 1024 bits); publishing such a key stays possible.
Pkey read_private_key(const std::string& pem_path, bool for_signing) {
  const Bio bio(BIO_new_file(pem_path.c_str(), "r"));
  if (!bio) throw std::runtime_error("dkim: cannot open private key file " + pem_path);
  // A password callback that refuses: an encrypted key is an error, never a prompt on the terminal.
  Pkey key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return -1; }, nullptr));
  if (!key) throw std::runtime_error("dkim: " + pem_path + " holds no readable unencrypted PEM private key");
  const int type = EVP_PKEY_get_base_id(key.get());
  if (type == EVP_PKEY_RSA && for_signing) {
    const int bits = EVP_PKEY_get_bits(key.get());
    if (bits < static_cast<int>(kMinSigningRsaBits)) {
      std::string why = "dkim: " + pem_path + ": RSA key of ";
      why += std::to_string(bits);
      why += " bits is too small to sign with (RFC 8301: at least 1024, 2048 recommended)";
      throw std::runtime_error(why);
    }
  } else if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
    throw std::runtime_error("dkim: " + pem_path + ": key is neither RSA nor Ed25519");
  }
  return key;
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::string_view to_string(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::rsa_sha256:
      return "rsa-sha256";
    case Algorithm::ed25519_sha256:
      return "ed25519-sha256";
  }
  return "unknown";
}

std::string_view to_string(Result result) {
  switch (result) {
    case Result::none:
      return "none";
    case Result::pass:
      return "pass";
    case Result::fail:
      return "fail";
    case Result::policy:
      return "policy";
    case Result::neutral:
      return "neutral";
    case Result::temperror:
      return "temperror";
    case Result::permerror:
      return "permerror";
  }
  return "unknown";
}

SigningKey load_signing_key(std::string_view domain, std::string_view selector, const std::string& pem_path) {
  const Pkey key = read_private_key(pem_path, true);
  SigningKey out;
  out.domain = domain;
  out.selector = selector;
  out.algorithm =
      EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519 ? Algorithm::ed25519_sha256 : Algorithm::rsa_sha256;
  // Re-encoded as PKCS#8 PEM: one form for both algorithms, without whatever else the file held.
  const Bio mem(BIO_new(BIO_s_mem()));
  if (!mem || PEM_write_bio_PKCS8PrivateKey(mem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("dkim: cannot encode the private key from " + pem_path);
  char* data = nullptr;
  const long size = BIO_get_mem_data(mem.get(), &data);
  out.private_key.assign(data, static_cast<std::size_t>(size));
  return out;
}

std::string public_key_record(const std::string& pem_path) {
  const Pkey key = read_private_key(pem_path, false);
  if (EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519) {
    unsigned char raw[32];
    std::size_t size = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key.get(), raw, &size) != 1)
      throw std::runtime_error("dkim: cannot extract the Ed25519 public key from " + pem_path);
    return "v=DKIM1; k=ed25519; p=" + base64(raw, size);
  }
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(key.get(), &der);
  if (size <= 0) throw std::runtime_error("dkim: cannot encode the RSA public key from " + pem_path);
  std::string record = "v=DKIM1; k=rsa; p=" + base64(der, static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return record;
}

// ---------------------------------------------------------------------------------------------------------
// Library

struct Library::Impl {
  Impl(dns::Resolver& r, VerifyOptions o) : resolver(r), options(o) {}
  dns::Resolver& resolver;
  VerifyOptions options;
  std::unique_ptr<DKIM_LIB, LibClose> lib;
};

Library::Library(dns::Resolver& resolver, VerifyOptions options)
    : impl_(std::make_unique<Impl>(resolver, options)) {
  impl_->lib.reset(dkim_init(nullptr, nullptr));
  DKIM_LIB* lib = impl_->lib.get();
  if (lib == nullptr) throw std::runtime_error("dkim: dkim_init() failed");
  if (!dkim_libfeature(lib, DKIM_FEATURE_SHA256))
    throw std::runtime_error("dkim: libopendkim was built without SHA-256");
  if (!dkim_libfeature(lib, DKIM_FEATURE_ED25519))
    throw std::runtime_error(
        "dkim: libopendkim was built without Ed25519 (RFC 8463 requires it of verifiers)");
  if (!dkim_libfeature(lib, DKIM_FEATURE_OVERSIGN))
    throw std::runtime_error("dkim: libopendkim was built without header oversigning");

  std::uint32_t flags = 0;
  if (dkim_options(lib, DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK)
    throw std::runtime_error("dkim: cannot read libopendkim flags");
  flags |= DKIM_LIBFLAGS_BADSIGHANDLES;
  set_option(lib, DKIM_OPTS_FLAGS, &flags, sizeof flags, "flags");
  u_int min_bits = options.min_rsa_key_bits;
  set_option(lib, DKIM_OPTS_MINKEYBITS, &min_bits, sizeof min_bits, "minimum key bits");
  // The list options take the array itself, with the size of the pointer libopendkim stores.
  set_option(lib, DKIM_OPTS_SIGNHDRS, kSignHeaders, sizeof(u_char**), "signed headers");
  set_option(lib, DKIM_OPTS_OVERSIGNHDRS, kOversignHeaders, sizeof(u_char**), "oversigned headers");

  dkim_dns_set_init(lib, dns_init_refuse);
  dkim_dns_set_query_start(lib, dns_start_refuse);
  if (dkim_set_key_lookup(lib, key_lookup_shim) != DKIM_STAT_OK ||
      dkim_set_prescreen(lib, prescreen_shim) != DKIM_STAT_OK)
    throw std::runtime_error("dkim: cannot install libopendkim callbacks");
}

Library::~Library() = default;

const VerifyOptions& Library::options() const {
  return impl_->options;
}

// ---------------------------------------------------------------------------------------------------------
// Verifier

struct Verifier::Impl {
  explicit Impl(Library::Impl& l) : lib(l) {}

  // What we know about a signature that libopendkim's own view would get wrong or does not know.
  struct Note {
    const DKIM_SIGINFO* sig;
    Result result;
    std::string reason;
  };

  Library::Impl& lib;
  DkimHandle dkim;
  std::string field;                   // reused for every header
  std::size_t signature_fields = 0;    // DKIM-Signature fields seen
  std::vector<std::size_t> malformed;  // their ordinals that libopendkim or we could not parse
  std::vector<Note> notes;
  bool headers_done = false;
  bool unsigned_message = false;  // dkim_eoh() found nothing to verify: skip the body
  std::string deferred_error;     // a library failure, thrown from finish()

  void note(const DKIM_SIGINFO* sig, Result result, std::string reason) {
    notes.push_back({sig, result, std::move(reason)});
  }
  const Note* find_note(const DKIM_SIGINFO* sig) const {
    for (const auto& n : notes)
      if (n.sig == sig) return &n;
    return nullptr;
  }

  DKIM_CBSTAT lookup_key(DKIM_SIGINFO* sig, u_char* buf, std::size_t buflen);
  void prescreen(DKIM_SIGINFO** sigs, int nsigs);
  Signature describe(DKIM_SIGINFO* sig) const;
};

DKIM_CBSTAT Verifier::Impl::lookup_key(DKIM_SIGINFO* sig, u_char* buf, std::size_t buflen) {
  const u_char* selector = dkim_sig_getselector(sig);
  const u_char* domain = dkim_sig_getdomain(sig);
  if (selector == nullptr || domain == nullptr) {
    note(sig, Result::permerror, "signature without d= or s=");
    return DKIM_CBSTAT_NOTFOUND;
  }
  std::string name = text(selector);
  name += "._domainkey.";
  name += text(domain);
  if (!valid_key_name(name)) {
    note(sig, Result::permerror, "invalid key name");
    return DKIM_CBSTAT_NOTFOUND;
  }
  const dns::Answer answer = lib.resolver.resolve(name, dns::RrType::txt);
  switch (answer.status) {
    case dns::Answer::Status::trouble:
      note(sig, Result::temperror, "key lookup failed: " + answer.why.substr(0, 80));
      return DKIM_CBSTAT_NOTFOUND;
    case dns::Answer::Status::nxdomain:
    case dns::Answer::Status::nodata:
      note(sig, Result::permerror, "no key record");
      return DKIM_CBSTAT_NOTFOUND;
    case dns::Answer::Status::found:
      break;
  }
  std::string record;
  bool decoded = false;
  for (const auto& rdata : answer.records) {
    if (auto txt = dns::decode_txt(rdata)) {
      record = std::move(*txt);
      decoded = true;
      break;
    }
  }
  if (!decoded || record.find('\0') != std::string::npos) {
    note(sig, Result::permerror, "malformed key record");
    return DKIM_CBSTAT_NOTFOUND;
  }
  if (record.size() >= buflen) {
    note(sig, Result::permerror, "key record too long");
    return DKIM_CBSTAT_NOTFOUND;
  }
  record.copy(reinterpret_cast<char*>(buf), record.size());
  buf[record.size()] = '\0';
  dkim_sig_setdnssec(sig, answer.secure ? DKIM_DNSSEC_SECURE : DKIM_DNSSEC_INSECURE);
  return DKIM_CBSTAT_CONTINUE;
}

void Verifier::Impl::prescreen(DKIM_SIGINFO** sigs, int nsigs) {
  // With BADSIGHANDLES every DKIM-Signature field has a handle, in field order; if that ever failed to hold,
  // ordinals would point at the wrong signature, so they are only trusted when the counts agree.
  const bool ordinals_hold = static_cast<std::size_t>(nsigs) == signature_fields;
  const std::size_t max = lib.options.max_signatures;
  // Only signatures that would cost a DNS query and a public-key operation count toward the limit, from the
  // top (the most recent hops): refused ones cost nothing, and counting them would let anyone on the path
  // push a good signature out of reach by prepending junk.
  std::size_t checked = 0;
  for (int i = 0; i < nsigs; ++i) {
    DKIM_SIGINFO* sig = sigs[i];
    const auto index = static_cast<std::size_t>(i);
    if (ordinals_hold && std::find(malformed.begin(), malformed.end(), index) != malformed.end()) {
      dkim_sig_ignore(sig);
      note(sig, Result::permerror, "malformed signature");
    } else if (dkim_sig_geterror(sig) != DKIM_SIGERROR_UNKNOWN) {
      // libopendkim already refused it (expired, bad a=, h= without From, ...): describe() reports why.
    } else if (iequals(tag_value(sig, "a"), "rsa-sha1")) {
      // Read from a= itself: dkim_sig_getsignalg() also says rsa-sha1 for signatures it never parsed fully.
      dkim_sig_ignore(sig);
      note(sig, Result::permerror, "rsa-sha1 is not accepted (RFC 8301)");
    } else if (checked >= max) {
      dkim_sig_ignore(sig);
      std::string why = "not checked: more than ";
      why += std::to_string(max);
      why += " signatures";
      note(sig, Result::neutral, std::move(why));
    } else {
      ++checked;
    }
  }
}

Signature Verifier::Impl::describe(DKIM_SIGINFO* sig) const {
  Signature out;
  out.domain = text(dkim_sig_getdomain(sig));
  out.selector = text(dkim_sig_getselector(sig));
  out.algorithm = tag_value(sig, "a");
  for (const char c : tag_value(sig, "b")) {
    if (out.header_b.size() == kHeaderBLength) break;
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out.header_b.push_back(c);
  }
  const bool ed25519 = iequals(out.algorithm, "ed25519-sha256");

  if (const Note* n = find_note(sig)) {
    out.result = n->result;
    out.reason = n->reason;
    return out;
  }

  unsigned bits = 0;
  if (!ed25519 && dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK) out.key_bits = bits;
  const unsigned flags = dkim_sig_getflags(sig);
  const int bh = dkim_sig_getbh(sig);
  const int error = dkim_sig_geterror(sig);

  if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
    if (ed25519) {
      out.key_bits = kEd25519Bits;
      out.result = Result::pass;
    } else if (out.key_bits < lib.options.min_rsa_key_bits) {
      out.result = Result::policy;
      out.reason = "key too small (" + std::to_string(out.key_bits);
      out.reason += " bits)";
    } else {
      out.result = Result::pass;
    }
    return out;
  }
  if (ed25519 && (flags & DKIM_SIGFLAG_PROCESSED) != 0 &&
      (error == DKIM_SIGERROR_BADSIG || error == DKIM_SIGERROR_OK))
    out.key_bits = kEd25519Bits;

  switch (error) {
    case DKIM_SIGERROR_BADSIG:
      out.result = Result::fail;
      out.reason = bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch" : "signature did not verify";
      break;
    case DKIM_SIGERROR_KEYTOOSMALL:
      out.result = Result::policy;
      out.reason = "key too small (" + std::to_string(out.key_bits);
      out.reason += " bits)";
      break;
    case DKIM_SIGERROR_TOOLARGE_L:
      out.result = Result::fail;
      out.reason = "body shorter than l=";
      break;
    case DKIM_SIGERROR_KEYFAIL:
      out.result = Result::temperror;
      out.reason = "key lookup failed";
      break;
    case DKIM_SIGERROR_NOKEY:
      out.result = Result::permerror;
      out.reason = "no key record";
      break;
    case DKIM_SIGERROR_UNKNOWN:
    case DKIM_SIGERROR_OK:
      out.result = Result::neutral;
      out.reason = "not verified";
      break;
    default: {
      out.result = Result::permerror;
      const char* what = dkim_sig_geterrorstr(error);
      out.reason = what != nullptr ? what : "signature error " + std::to_string(error);
      break;
    }
  }
  return out;
}

namespace {

DKIM_CBSTAT key_lookup_shim(DKIM* dkim, DKIM_SIGINFO* sig, u_char* buf, std::size_t buflen) noexcept {
  auto* verifier = static_cast<Verifier::Impl*>(dkim_get_user_context(dkim));
  if (verifier == nullptr) return DKIM_CBSTAT_ERROR;
  try {
    return verifier->lookup_key(sig, buf, buflen);
  } catch (...) {
    try {
      verifier->note(sig, Result::temperror, "key lookup failed");
    } catch (...) {  // out of memory twice over: libopendkim still sees "not found", never a pass
    }
    return DKIM_CBSTAT_NOTFOUND;
  }
}

DKIM_CBSTAT prescreen_shim(DKIM* dkim, DKIM_SIGINFO** sigs, int nsigs) noexcept {
  auto* verifier = static_cast<Verifier::Impl*>(dkim_get_user_context(dkim));
  if (verifier == nullptr) return DKIM_CBSTAT_ERROR;
  try {
    verifier->prescreen(sigs, nsigs);
    return DKIM_CBSTAT_CONTINUE;
  } catch (...) {
    return DKIM_CBSTAT_ERROR;
  }
}

}  // namespace

Verifier::Verifier(Library& lib) : impl_(std::make_unique<Impl>(*lib.impl_)) {
  DKIM_STAT status = DKIM_STAT_OK;
  impl_->dkim.reset(dkim_verify(lib.impl_->lib.get(), as_uchar("chainmail"), nullptr, &status));
  if (!impl_->dkim) throw std::runtime_error("dkim: dkim_verify() failed: " + library_error(nullptr, status));
  dkim_set_user_context(impl_->dkim.get(), impl_.get());
}

Verifier::~Verifier() = default;

void Verifier::header(std::string_view name, std::string_view value) {
  Impl& v = *impl_;
  if (v.headers_done) throw std::logic_error("dkim: Verifier::header() after end_of_headers()");
  const bool signature = iequals(name, kSignatureHeader);
  build_field(v.field, name, value);
  const DKIM_STAT status = dkim_header(v.dkim.get(), as_uchar(v.field), v.field.size());
  if (status == DKIM_STAT_NORESOURCE)
    throw std::runtime_error("dkim: " + library_error(v.dkim.get(), status));
  // Any other refusal describes the message (a field libopendkim cannot take): it then simply is not part
  // of what a signature can cover. A refused DKIM-Signature is reported as malformed.
  if (signature) {
    const std::size_t ordinal = v.signature_fields++;
    if (status != DKIM_STAT_OK || has_duplicate_tag(value)) v.malformed.push_back(ordinal);
  }
}

void Verifier::end_of_headers() {
  Impl& v = *impl_;
  if (v.headers_done) return;
  v.headers_done = true;
  const DKIM_STAT status = dkim_eoh(v.dkim.get());
  if (status == DKIM_STAT_NOSIG) {
    v.unsigned_message = true;
  } else if (status != DKIM_STAT_OK && v.deferred_error.empty()) {
    // dkim_eom() runs the signatures dkim_eoh() did not reach; only a failure there is thrown.
    v.deferred_error = library_error(v.dkim.get(), status);
  }
}

void Verifier::body(std::string_view chunk) {
  Impl& v = *impl_;
  if (!v.headers_done) end_of_headers();
  if (v.unsigned_message || chunk.empty()) return;
  // dkim_body() only reads the buffer; its prototype lacks const.
  auto* data = reinterpret_cast<u_char*>(const_cast<char*>(chunk.data()));
  const DKIM_STAT status = dkim_body(v.dkim.get(), data, chunk.size());
  if (status != DKIM_STAT_OK && v.deferred_error.empty())
    v.deferred_error = library_error(v.dkim.get(), status);
}

std::vector<Signature> Verifier::finish() {
  Impl& v = *impl_;
  if (!v.headers_done) end_of_headers();
  if (v.signature_fields == 0) return {};
  const DKIM_STAT status = dkim_eom(v.dkim.get(), nullptr);
  if (is_library_failure(status)) {
    std::string why = "dkim: verification failed: " + library_error(v.dkim.get(), status);
    if (!v.deferred_error.empty()) why += " (earlier: " + v.deferred_error + ")";
    throw std::runtime_error(why);
  }
  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  if (dkim_getsiglist(v.dkim.get(), &sigs, &nsigs) != DKIM_STAT_OK || sigs == nullptr) return {};
  std::vector<Signature> out;
  out.reserve(static_cast<std::size_t>(nsigs));
  for (int i = 0; i < nsigs; ++i) out.push_back(v.describe(sigs[i]));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Signer

struct Signer::Impl {
  DkimHandle dkim;
  std::string field;
  bool headers_done = false;
};

Signer::Signer(Library& lib, const SigningKey& key) : impl_(std::make_unique<Impl>()) {
  const dkim_alg_t alg =
      key.algorithm == Algorithm::ed25519_sha256 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256;
  DKIM_STAT status = DKIM_STAT_OK;
  // dkim_sign() copies the key, selector and domain.
  auto* secret = reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key.private_key.c_str()));
  impl_->dkim.reset(dkim_sign(lib.impl_->lib.get(), as_uchar("chainmail"), nullptr, secret,
                              as_uchar(key.selector.c_str()), as_uchar(key.domain.c_str()),
                              DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, alg, -1, &status));
  if (!impl_->dkim) throw std::runtime_error("dkim: dkim_sign() failed: " + library_error(nullptr, status));
}

Signer::~Signer() = default;

void Signer::header(std::string_view name, std::string_view value) {
  Impl& s = *impl_;
  if (s.headers_done) throw std::logic_error("dkim: Signer::header() after end_of_headers()");
  build_field(s.field, name, value);
  const DKIM_STAT status = dkim_header(s.dkim.get(), as_uchar(s.field), s.field.size());
  // A field libopendkim refuses (no valid name) is left out of the signature, as it would be of h=.
  if (status == DKIM_STAT_NORESOURCE)
    throw std::runtime_error("dkim: " + library_error(s.dkim.get(), status));
}

void Signer::end_of_headers() {
  Impl& s = *impl_;
  if (s.headers_done) return;
  s.headers_done = true;
  const DKIM_STAT status = dkim_eoh(s.dkim.get());
  if (status != DKIM_STAT_OK)
    throw std::runtime_error("dkim: cannot sign: " + library_error(s.dkim.get(), status));
}

void Signer::body(std::string_view chunk) {
  Impl& s = *impl_;
  if (!s.headers_done) end_of_headers();
  if (chunk.empty()) return;
  auto* data = reinterpret_cast<u_char*>(const_cast<char*>(chunk.data()));
  const DKIM_STAT status = dkim_body(s.dkim.get(), data, chunk.size());
  if (status != DKIM_STAT_OK)
    throw std::runtime_error("dkim: cannot sign: " + library_error(s.dkim.get(), status));
}

std::string Signer::finish() {
  Impl& s = *impl_;
  if (!s.headers_done) end_of_headers();
  DKIM_STAT status = dkim_eom(s.dkim.get(), nullptr);
  if (status != DKIM_STAT_OK)
    throw std::runtime_error("dkim: cannot sign: " + library_error(s.dkim.get(), status));
  u_char* value = nullptr;
  std::size_t length = 0;
  status = dkim_getsighdr_d(s.dkim.get(), std::strlen(kSignatureHeader) + 2, &value, &length);
  if (status != DKIM_STAT_OK || value == nullptr)
    throw std::runtime_error("dkim: cannot sign: " + library_error(s.dkim.get(), status));
  // Leading space for SMFIP_HDR_LEADSPC; libmilter wants LF line ends inside a value (OpenDKIM strips the CRs
  // the same way).
  std::string out;
  out.reserve(length + 1);
  out.push_back(' ');
  for (std::size_t i = 0; i < length; ++i)
    if (value[i] != '\r') out.push_back(static_cast<char>(value[i]));
  return out;
}

}  // namespace chainmail::dkim
