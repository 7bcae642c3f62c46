// runtime.h - everything the milter's callbacks consult, built from chainmail.conf.
//
// Two lifetimes. Engines live as long as the process: the DNS resolver (its cache is the point of having one)
// and the DMARC evaluator (libopendmarc initialises global state once, before threads). Their settings
// ([dns], dmarc.public_suffix_list) take effect on restart. A Runtime is rebuilt on SIGHUP: the directory,
// the router, the SPF and DKIM settings, the signing keys, the trusted networks. Each message holds a
// shared_ptr to the Runtime it started with, so a reload never changes the rules under a message in flight.
//
// DIAGNOSTICS: constructors throw std::runtime_error naming what could not be built (an unreadable key file,
// an LDIF file, an unusable resolver address); the caller reports it and keeps the previous runtime.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapters/directory_factory.h"
#include "adapters/dkim/dkim.h"
#include "adapters/dmarc/dmarc.h"
#include "adapters/dns/resolver.h"
#include "adapters/spf/spf_checker.h"
#include "core/config.h"
#include "core/network.h"
#include "core/router.h"

namespace chainmail::milter {

struct Engines {
  explicit Engines(const Config& config);
  // For tests: a resolver of the caller's (e.g. dns::StaticResolver), owned elsewhere, used without a cache.
  Engines(const Config& config, dns::Resolver& resolver);

  dns::Resolver& resolver() { return *resolver_; }
  dmarc::Evaluator& dmarc() { return *dmarc_; }

 private:
  std::unique_ptr<dns::Resolver> unbound_;
  std::unique_ptr<dns::Resolver> cache_;
  dns::Resolver* resolver_ = nullptr;
  std::unique_ptr<dmarc::Evaluator> dmarc_;
};

struct Runtime {
  Runtime(Config c, Engines& engines);

  Config config;
  DirectoryStack directory;
  Router router;
  std::vector<Network> trusted;
  std::string authserv_id;
  spf::Checker spf;
  mutable dkim::Library dkim;
  dmarc::Evaluator& dmarc;
  std::map<std::string, std::vector<dkim::SigningKey>> signing;  // lower-case From domain -> keys

  // The keys for a From domain (empty when we do not sign for it).
  const std::vector<dkim::SigningKey>* keys_for(std::string_view domain) const;
};

}  // namespace chainmail::milter
