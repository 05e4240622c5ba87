#include "proxy/service/settings.h"

#include <algorithm>
#include <cctype>

namespace thimble::proxy {

Result<OriginOptions> OriginOptions::from(const conf::Config& config) {
  OriginOptions options;
  Result<PresetTable> presets = PresetTable::from(config.presets);
  if (!presets.ok()) return presets.status();
  options.presets = std::move(presets).value();
  options.only_presets = config.security.only_presets;
  options.signature_header = config.security.signature_header;
  options.cache_control = config.cache_control;
  options.auto_webp = config.output.auto_webp;
  options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  options.max_url_bytes = static_cast<std::size_t>(config.limits.max_url_bytes);
  options.spec_limits = {.max_filters = config.limits.max_filters,
                         .max_blur_radius = config.limits.max_blur_radius,
                         .max_convolution_size = config.limits.max_convolution_size,
                         .max_round_corner_radius = config.limits.max_round_corner_radius,
                         .max_watermarks = config.limits.max_watermarks,
                         .min_max_bytes = config.limits.min_max_bytes};
  options.remembered_originals = static_cast<std::size_t>(config.smart.remembered_originals);
  // A 404 is not remembered longer than the CDN is told to keep it: once its error_max_age is
  // over, the CDN's next request must see an original uploaded since.
  options.not_found_ttl = std::chrono::seconds(
      std::min(config.result_cache.not_found_ttl_s, config.cache_control.error_max_age));
  options.original_cache_bytes = config.original_cache.memory_bytes;
  options.original_ttl = std::chrono::seconds(config.original_cache.ttl_s);
  transform::RenderSettings& r = options.render;
  r.max_source_pixels = config.limits.max_source_pixels;
  r.max_source_dimension = config.limits.max_source_dimension;
  r.max_decoder_memory_bytes = config.limits.max_decoder_memory_bytes;
  r.max_jpeg_scans = config.limits.max_jpeg_scans;
  r.max_output_dimension = config.limits.max_output_dimension;
  r.respect_orientation = config.output.respect_orientation;
  r.jpeg_quality = config.output.jpeg_quality;
  r.jpeg_progressive = config.output.jpeg_progressive;
  r.webp_quality = config.output.webp_quality;
  r.png_compression = config.output.png_compression;
  r.face_cascade = config.smart.face_cascade;
  return options;
}

std::shared_ptr<const ServiceSettings> ServiceSettings::make(OriginOptions options,
                                                             signing::UrlSigner signer) {
  const transform::RenderSettings& r = options.render;
  std::string fingerprint =
      "q" + std::to_string(r.jpeg_quality) + "p" + std::to_string(r.jpeg_progressive) + "w" +
      std::to_string(r.webp_quality) + "z" + std::to_string(r.png_compression) + "o" +
      std::to_string(r.respect_orientation);
  EntityTags etags(signer.keys());
  std::string field = options.signature_header;
  for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::make_shared<const ServiceSettings>(
      ServiceSettings{std::move(options), std::move(signer), std::move(etags),
                      std::move(fingerprint), std::move(field)});
}

}  // namespace thimble::proxy
