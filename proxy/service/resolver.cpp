#include "proxy/service/resolver.h"

#include "proxy/common/header_policy.h"

namespace thimble::proxy {

std::optional<OriginResponse> Resolver::fixed_route(const OriginRequest& request, bool draining,
                                                    const ServiceSettings& settings) const {
  const conf::CacheControlConfig& cache_control = settings.options.cache_control;
  if (request.path == "/healthz" || request.path == "/readyz") {
    const bool ready = request.path == "/healthz" || !draining;
    return uncached_text_answer(ready ? 200 : 503, Route::kHealth, "text/plain; charset=utf-8",
                                ready ? "ok\n" : "draining\n");
  }
  if (metrics_ && request.listener != Listener::kPublic && request.path == "/metrics") {
    return uncached_text_answer(200, Route::kMetrics, "text/plain; version=0.0.4; charset=utf-8",
                                metrics_->render());
  }
  if (request.listener == Listener::kAdmin) {
    return error_answer(
        {Code::kNotFound, "the admin listener serves /healthz, /readyz and /metrics only"},
        Route::kOther, cache_control);
  }
  if (request.path == "/" || request.path == "/favicon.ico" || request.path == "/robots.txt" ||
      request.path == "/metrics") {
    return error_answer({Code::kNotFound, "no such resource"}, Route::kOther, cache_control);
  }
  return std::nullopt;
}

Resolver::Wanted Resolver::wanted(const OriginRequest& request,
                                  const ServiceSettings& settings) const {
  const OriginOptions& options = settings.options;
  Wanted out;
  // A signature carried in the configured header stands in front of the path, where it would
  // be in a Thumbor URL (for CDNs that strip it from the path to find stored results).
  const std::string_view carried = settings.signature_field.empty()
                                       ? std::string_view()
                                       : request.header(settings.signature_field);
  const std::string path =
      carried.empty() ? request.path : "/" + std::string(carried) + request.path;
  out.unsafe = path.starts_with("/unsafe/");
  // The options and image the URL asks for: after its signature, or a preset's expansion.
  std::optional<PresetTable::Expansion> expanded;
  std::string_view asked;
  if (path.starts_with("/") && std::string_view(path).substr(1).starts_with(PresetTable::kPrefix)) {
    // `/preset:NAME/<image>`: no signature, public presets only.
    out.preset = true;
    auto expansion = options.presets.expand(path.substr(1), false);
    if (!expansion.ok()) return out.spec = expansion.status(), out;
    expanded = std::move(expansion).value();
  } else {
    Result<std::string_view> signed_part = settings.signer.verify(path);
    if (!signed_part.ok()) return out.spec = signed_part.status(), out;
    if (signed_part->starts_with(PresetTable::kPrefix)) {
      out.preset = true;
      auto expansion = options.presets.expand(*signed_part, true);
      if (!expansion.ok()) return out.spec = expansion.status(), out;
      expanded = std::move(expansion).value();
    } else if (options.security.only_presets) {
      out.spec =
          Status(Code::kBadSignature, "this server only serves presets (preset:NAME/<image>)");
      return out;
    } else {
      asked = *signed_part;
    }
  }
  if (expanded) asked = expanded->path;
  out.spec = transform::parse_spec(asked);
  if (out.spec.ok() && expanded) {
    if (Status only = PresetTable::check_image_only(*expanded, out.spec->image); !only.ok())
      out.spec = only;
  }
  if (out.spec.ok()) {
    if (Status within = transform::check_limits(*out.spec, options.limits); !within.ok())
      out.spec = within;
  }
  return out;
}

std::variant<OriginResponse, Job> Resolver::resolve(const OriginRequest& request,
                                                    std::shared_ptr<const ServiceSettings> settings,
                                                    bool draining) const {
  const conf::CacheControlConfig& cache_control = settings->options.cache_control;
  if (request.method != "GET" && request.method != "HEAD") {
    return error_answer({Code::kMethodNotAllowed, "only GET and HEAD are supported"}, Route::kOther,
                        cache_control);
  }
  if (std::optional<OriginResponse> fixed = fixed_route(request, draining, *settings)) {
    return std::move(*fixed);
  }
  if (request.path.size() > static_cast<std::size_t>(settings->options.limits.max_url_bytes)) {
    return error_answer(
        {Code::kUriTooLong, "the URL is longer than " +
                                std::to_string(settings->options.limits.max_url_bytes) + " bytes"},
        Route::kThumbnail, cache_control);
  }
  Wanted asked = wanted(request, *settings);
  if (!asked.spec.ok()) {
    return error_answer(asked.spec.status(), asked.preset ? Route::kPreset : Route::kThumbnail,
                        cache_control);
  }
  transform::ThumbnailSpec& spec = *asked.spec;

  Job job;
  job.route = asked.preset ? Route::kPreset : spec.meta ? Route::kMeta : Route::kThumbnail;
  job.negotiated = negotiate(request.header("accept"), settings->options.output, spec);
  job.vary_accept =
      (settings->options.output.auto_avif || settings->options.output.auto_webp) && !spec.format;
  job.cache_key =
      spec.canonical() + "|" + spec.image + "|" +
      (spec.format      ? std::string(transform::format_name(*spec.format))
       : job.negotiated ? std::string(transform::format_name(*job.negotiated)) + "-negotiated"
                        : "source") +
      "|" + settings->fingerprint;
  job.transform = transform_hash(job.cache_key);
  job.unsafe = asked.unsafe;
  job.spec = std::move(spec);
  job.conditions = {std::string(request.header("if-none-match")),
                    std::string(request.header("if-modified-since"))};
  job.settings = std::move(settings);
  return job;
}

std::optional<transform::ImageFormat> negotiate(std::string_view accept,
                                                const conf::OutputConfig& output,
                                                const transform::ThumbnailSpec& spec) {
  if (spec.format) return std::nullopt;
  if (output.auto_avif && accepts_type(accept, "image/avif")) return transform::ImageFormat::kAvif;
  if (output.auto_webp && accepts_type(accept, "image/webp")) return transform::ImageFormat::kWebp;
  return std::nullopt;
}

}  // namespace thimble::proxy
