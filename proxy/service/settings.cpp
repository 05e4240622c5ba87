#include "proxy/service/settings.h"

#include <algorithm>
#include <cctype>

namespace thimble::proxy {

Result<OriginOptions> OriginOptions::from(const conf::Config& config) {
  Result<PresetTable> presets = PresetTable::from(config.presets);
  if (!presets.ok()) return presets.status();
  return OriginOptions{config.server,
                       config.security,
                       config.limits,
                       config.output,
                       config.cache_control,
                       config.result_cache,
                       config.original_cache,
                       config.smart,
                       std::move(presets).value(),
                       std::chrono::seconds(config.result_storage.revalidate_s)};
}

std::chrono::seconds OriginOptions::not_found_ttl() const {
  return std::chrono::seconds(std::min(result_cache.not_found_ttl_s, cache_control.error_max_age));
}

std::shared_ptr<const ServiceSettings> ServiceSettings::make(OriginOptions options,
                                                             signing::UrlSigner signer) {
  transform::RenderSettings render(options.limits, options.output, options.smart);
  const conf::OutputConfig& out = options.output;
  std::string fingerprint =
      "q" + std::to_string(out.jpeg_quality) + "p" + std::to_string(out.jpeg_progressive) + "w" +
      std::to_string(out.webp_quality) + "z" + std::to_string(out.png_compression) + "o" +
      std::to_string(out.respect_orientation) + "c" + out.color_management + "a" +
      std::to_string(out.avif_quality) + "s" + std::to_string(out.avif_speed) + "Q" + out.quality +
      std::to_string(out.auto_quality_ssim) + "-" + std::to_string(out.auto_quality_min) + "-" +
      std::to_string(out.auto_quality_max) +  // quality(auto) URLs depend on these in any case
      "C" + out.chroma_subsampling;
  EntityTags etags(signer.keys());
  std::string field = options.security.signature_header;
  for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::make_shared<const ServiceSettings>(
      ServiceSettings{std::move(options), std::move(signer), std::move(etags),
                      std::move(fingerprint), std::move(field), std::move(render)});
}

}  // namespace thimble::proxy
