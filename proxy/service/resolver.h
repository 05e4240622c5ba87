// Resolver: turns a request into what remains to do (a Job) or into an answer that needs no work
// (health, metrics, every 4xx). It checks the method, the route and the URL length, verifies the
// signature (in the path or the configured header), expands presets, parses the URL into a
// ThumbnailSpec within the server's limits, negotiates the output format and makes the cache key.
// It never blocks and does no I/O: it runs on the HTTP reactor thread.
//
// Thread-safety: resolve() may be called from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "conf/base/deadline.h"
#include "proxy/service/answers.h"
#include "proxy/service/exchange.h"
#include "proxy/service/settings.h"
#include "transform/spec.h"

namespace thimble::proxy {

// A thumbnail (or meta/ description) to make or to find, with what its answer needs.
struct Job {
  transform::ThumbnailSpec spec;
  // The result cache's key: canonical spec, image, output format and output settings.
  std::string cache_key;
  std::string transform;  // transform_hash(cache_key), the transform part of the ETag
  bool unsafe = false;    // an unsigned /unsafe/ URL
  std::optional<transform::ImageFormat> negotiated;  // chosen from Accept (auto-AVIF, auto-WebP)
  bool vary_accept = false;
  Conditions conditions;  // what the client already holds
  Deadline deadline;      // set when the job is accepted for work
  Route route = Route::kThumbnail;
  std::shared_ptr<const ServiceSettings> settings;  // those the request began with
};

class Resolver {
 public:
  // `metrics` (may be null) is what /metrics serves.
  explicit Resolver(const Metrics* metrics) : metrics_(metrics) {}

  // `draining` makes /readyz answer 503.
  std::variant<OriginResponse, Job> resolve(const OriginRequest& request,
                                            std::shared_ptr<const ServiceSettings> settings,
                                            bool draining) const;

 private:
  // Health, metrics and the paths no thumbnail has; nullopt for every other path.
  std::optional<OriginResponse> fixed_route(const OriginRequest& request, bool draining,
                                            const ServiceSettings& settings) const;
  // The options and image the URL asks for, its signature checked and presets expanded.
  struct Wanted {
    Result<transform::ThumbnailSpec> spec = Status(Code::kInternal, "unresolved");
    bool preset = false;  // a preset's URL (its errors are counted on that route)
    bool unsafe = false;  // an unsigned /unsafe/ URL
  };
  Wanted wanted(const OriginRequest& request, const ServiceSettings& settings) const;

  const Metrics* const metrics_;
};

// The format Accept chooses when the URL names none: AVIF with output.auto_avif, else WebP with
// output.auto_webp, when the header admits it explicitly; nullopt for the source's own format.
// (render() gives an animation animated WebP where AVIF was chosen.)
std::optional<transform::ImageFormat> negotiate(std::string_view accept,
                                                const conf::OutputConfig& output,
                                                const transform::ThumbnailSpec& spec);

}  // namespace thimble::proxy
