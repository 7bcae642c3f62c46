// dkim.h - DKIM verification (RFC 6376, RFC 8463 ed25519-sha256, RFC 8301) and signing on libopendkim.
//
// One Library per process holds libopendkim's handle and its settings; each message gets its own Verifier or
// Signer, fed the way a milter sees the message:
//
//   dkim::Library lib(resolver, {});                 // once
//   dkim::Verifier v(lib);                           // per message, one thread
//   v.header("From", " Joe <joe@example.com>");     // raw value after the colon, folding kept
//   v.end_of_headers();
//   v.body(chunk);                                   // CRLF line ends, any chunking
//   std::vector<dkim::Signature> results = v.finish();
//
// Results, per DKIM-Signature field and in header order (RFC 8601 section 2.7.1 words):
//   pass       signature and body hash verify with a key of acceptable size
//   fail       the signature or the body hash does not verify (message changed, or a bad signer)
//   policy     it verifies, but the RSA key is shorter than VerifyOptions::min_rsa_key_bits (RFC 8301 makes
//              keys under 1024 bits unacceptable; a larger local minimum is the ADMD's policy - OpenDKIM
//              reports the same case as "policy")
//   temperror  the key could not be fetched now (DNS trouble through dns::Resolver): retrying can help
//   permerror  no key record, a revoked or undecodable key, a malformed signature, a signature expired or
//              from the future, rsa-sha1 (RFC 8301: not valid), or a key record unfit for the signature
//   neutral    not checked: once VerifyOptions::max_signatures signatures (counted from the top, refused
//              ones not counted) are being verified, the rest are reported with reason "not checked: ..."
//              and cost no DNS query and no cryptography
// An unsigned message gives an empty vector.
//
// Keys come only from dns::Resolver (TXT at selector._domainkey.domain, the first record of the answer);
// libopendkim's own resolver is disabled, so it can never send a query of its own.
//
// Signing: relaxed header / simple body canonicalization; the RFC 6376 section 5.4.1 header set plus
// Message-ID and the MIME fields (MIME-Version, Content-Type, Content-Transfer-Encoding), each signed for
// every instance present; From is oversigned (listed once more than present) so no second From can be added.
// Signer::finish() returns the field value for smfi_insheader: it starts with a space (the milter negotiates
// SMFIP_HDR_LEADSPC) and folds with "\n\t" (libmilter's line ends; the MTA writes CRLF).
//
// SECURITY: message text is untrusted. At most max_signatures signatures cost DNS queries and public-key
// operations per message; a key record longer than 1024 bytes (libopendkim's buffer; a 4096-bit RSA record
// is ~740) is refused as permerror. Key names are checked for length before they reach the resolver. The
// caller bounds the header count and size (the milter does); libopendkim copies every header once.
// DIAGNOSTICS: Signature::reason says why a signature did not pass, in a few words fit for a log line or an
// Authentication-Results comment. Library failures throw std::runtime_error: out of memory anywhere, a
// Verifier whose libopendkim handle breaks (from finish()), a Signer that cannot sign (no From field, an
// unusable key: from end_of_headers(), body() or finish()). A malformed incoming message never throws.
// KNOWN UPSTREAM DEFECT: libopendkim 2.11.0~beta2 parses the private key again for every message and, for
// Ed25519 only, never frees its key material (dkim_free() releases RSA's alone). In executables linking
// key_cache_interpose.cc (chainmail-milter) the key itself comes from a cache and is not lost; libopendkim's
// own 64 bytes per Ed25519 signature still are (480 without the cache). RSA signing and all verification
// are leak-free (checked under LeakSanitizer).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/dns/resolver.h"

namespace chainmail::dkim {

enum class Algorithm { rsa_sha256, ed25519_sha256 };
std::string_view to_string(Algorithm algorithm);  // "rsa-sha256", "ed25519-sha256"

enum class Result { none, pass, fail, policy, neutral, temperror, permerror };  // RFC 8601 dkim results
std::string_view to_string(Result result);

struct Signature {  // one per DKIM-Signature checked, in header order
  Result result = Result::none;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string algorithm;  // a= as written (e.g. "rsa-sha256")
  std::string header_b;   // first 8 characters of b= (folding whitespace removed), for header.b
  unsigned key_bits = 0;  // RSA modulus size, 256 for Ed25519; 0 when no key was decoded
  std::string reason;     // short human text when not pass ("body hash mismatch", "key too small", ...)
};

struct VerifyOptions {
  std::size_t max_signatures = 5;
  unsigned min_rsa_key_bits = 1024;  // also the smallest RSA key the Signer will sign with
};

struct SigningKey {
  std::string domain, selector;
  Algorithm algorithm = Algorithm::rsa_sha256;  // derived from the key file when loaded
  // Unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") for both algorithms: libopendkim 2.11 reads any
  // PEM private key with PEM_read_bio_PrivateKey and takes Ed25519 keys that way too.
  std::string private_key;
};

// Loads a PEM private key file (RSA, traditional or PKCS#8, or Ed25519 PKCS#8 as `openssl genpkey` writes
// them). Refuses encrypted keys, other key types and RSA keys under 1024 bits (RFC 8301). Throws
// std::runtime_error naming the file and the reason.
SigningKey load_signing_key(std::string_view domain, std::string_view selector, const std::string& pem_path);

// The DNS TXT record ("v=DKIM1; k=...; p=...") that publishes the public half of a PEM private key file;
// for `chainmail` tooling and tests. Throws std::runtime_error like load_signing_key.
std::string public_key_record(const std::string& pem_path);

class Library {  // one per process; thread-safe to create Verifier/Signer from many threads
 public:
  Library(dns::Resolver& resolver, VerifyOptions options);  // key lookups go through `resolver`
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const VerifyOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend class Verifier;
  friend class Signer;
};

class Verifier {  // one per message, used by one thread
 public:
  explicit Verifier(Library& lib);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // `value` is the field's raw text after the colon exactly as in the message (leading space and folding
  // CRLFs kept; the milter negotiates SMFIP_HDR_LEADSPC). Bare LF folding is accepted too.
  void header(std::string_view name, std::string_view value);
  void end_of_headers();              // fetches keys and checks header signatures
  void body(std::string_view chunk);  // CRLF line ends as the MTA sends them; not copied
  std::vector<Signature> finish();    // empty when the message carries no DKIM-Signature

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Signer {  // one per message
 public:
  Signer(Library& lib, const SigningKey& key);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  void header(std::string_view name, std::string_view value);
  void end_of_headers();
  void body(std::string_view chunk);
  std::string
  finish();  // the DKIM-Signature field VALUE (without "DKIM-Signature:"), ready for smfi_insheader

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chainmail::dkim
