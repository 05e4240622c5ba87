#include "proxy/service/presets.h"

#include "transform/spec.h"

namespace thimble::proxy {

Result<PresetTable> PresetTable::from(const std::map<std::string, conf::Preset>& presets) {
  PresetTable table;
  for (const auto& [name, preset] : presets) {
    // The options must parse and must leave the image untouched after them.
    constexpr std::string_view kProbe = "preset-probe.jpg";
    Result<transform::ThumbnailSpec> spec =
        transform::parse_spec(preset.options + "/" + std::string(kProbe));
    if (!spec.ok()) {
      return Status(Code::kBadRequest, "presets." + name + ": " + spec.status().message());
    }
    if (spec->image != kProbe) {
      return Status(Code::kBadRequest, "presets." + name + ": '" + preset.options +
                                           "' is not only options (it names an image)");
    }
    table.presets_.emplace(name, preset);
  }
  return table;
}

Result<PresetTable::Expansion> PresetTable::expand(std::string_view preset_and_image,
                                                   bool signed_url) const {
  std::string_view rest = preset_and_image.substr(kPrefix.size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) {
    return Status(Code::kBadRequest, "expected preset:NAME/<image>");
  }
  const std::string_view name = rest.substr(0, slash);
  auto found = presets_.find(name);
  if (found == presets_.end()) {
    // The name is echoed only when it could be one, so the message stays a safe one-liner.
    return Status(Code::kBadRequest, conf::is_preset_name(name)
                                         ? "unknown preset '" + std::string(name) + "'"
                                         : "unknown preset");
  }
  if (!signed_url && !found->second.is_public) {
    return Status(Code::kBadSignature,
                  "preset '" + found->first + "' is not public: the URL must be signed");
  }
  return Expansion{found->second.options + "/" + std::string(rest.substr(slash + 1)),
                   found->second.options.size() + 1};
}

Status PresetTable::check_image_only(const Expansion& expansion, std::string_view parsed_image) {
  if (parsed_image == expansion.image()) return Status::Ok();
  return Status(Code::kBadRequest,
                "only the image may follow a preset (preset:NAME/<image>), not more options");
}

}  // namespace thimble::proxy
