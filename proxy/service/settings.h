// What a request reads from the configuration (OriginOptions), with the signer and ETag keys made
// from it, as one immutable snapshot: a reload replaces the snapshot, and a request keeps the one
// it began with to its end.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "conf/base/status.h"
#include "conf/config.h"
#include "proxy/service/entity_tag.h"
#include "proxy/service/presets.h"
#include "signing/signer.h"
#include "transform/pipeline.h"
#include "transform/spec.h"

namespace thimble::proxy {

struct OriginOptions {
  conf::CacheControlConfig cache_control;
  transform::RenderSettings render;
  bool auto_webp = false;
  std::chrono::milliseconds request_timeout{30000};  // the processing deadline
  std::size_t max_url_bytes = 8192;                  // longer request paths → 414
  transform::SpecLimits spec_limits;
  std::size_t remembered_originals = 10000;  // smart/ focal points kept per original version
  std::chrono::seconds not_found_ttl{10};    // how long a source's 404 is believed; 0 = never
  std::uint64_t original_cache_bytes = 64ull << 20;  // originals kept for their other sizes
  std::chrono::seconds original_ttl{60};             // how long a kept original is used
  PresetTable presets;
  bool only_presets = false;  // refuse URLs that do not name a preset
  // A request header that may carry the signature of a path that has none; "" = never.
  std::string signature_header;

  // Fails when a preset's options do not parse.
  static Result<OriginOptions> from(const conf::Config& config);
};

struct ServiceSettings {
  OriginOptions options;
  signing::UrlSigner signer;
  EntityTags etags;         // made from the signer's keys
  std::string fingerprint;  // the output settings that change a thumbnail's bytes
  // options.signature_header lower-cased, as OriginRequest::header() looks it up.
  std::string signature_field;

  static std::shared_ptr<const ServiceSettings> make(OriginOptions options,
                                                     signing::UrlSigner signer);
};

}  // namespace thimble::proxy
