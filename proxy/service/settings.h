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

// The sections of the configuration the service reads, as they are: conf/config.h writes every
// default, once.
struct OriginOptions {
  conf::ServerConfig server;                 // request_timeout_ms: the processing deadline
  conf::SecurityConfig security;             // only_presets, signature_header (keys: the signer)
  conf::LimitsConfig limits;                 // URL, source and output limits
  conf::OutputConfig output;                 // encoder settings, auto_webp
  conf::CacheControlConfig cache_control;    // lifetimes told to the CDN
  conf::ResultCacheConfig result_cache;      // not_found_ttl_s
  conf::OriginalCacheConfig original_cache;  // kept originals: memory_bytes, ttl_s
  conf::SmartConfig smart;                   // face cascade, remembered_originals
  PresetTable presets;                       // the `presets` section, parsed
  // result_storage.revalidate_s: how long a result's original is believed unchanged.
  std::chrono::seconds revalidate{60};

  // Fails when a preset's options do not parse.
  static Result<OriginOptions> from(const conf::Config& config);

  // How long a source's 404 is believed: result_cache.not_found_ttl_s, never longer than the CDN
  // is told to keep it (once its error_max_age is over, the CDN's next request must see an
  // original uploaded since).
  std::chrono::seconds not_found_ttl() const;
};

struct ServiceSettings {
  OriginOptions options;
  signing::UrlSigner signer;
  EntityTags etags;         // made from the signer's keys
  std::string fingerprint;  // the output settings that change a thumbnail's bytes
  // security.signature_header lower-cased, as OriginRequest::header() looks it up.
  std::string signature_field;
  transform::RenderSettings render;  // the limits, output and smart sections, for render()

  static std::shared_ptr<const ServiceSettings> make(OriginOptions options,
                                                     signing::UrlSigner signer);
};

}  // namespace thimble::proxy
