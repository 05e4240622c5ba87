// PresetTable: the configured presets (named Thumbor option strings), checked once at start so a
// typo in the configuration is refused before serving rather than answered 400 forever.
//
// URL forms (SPEC-compatible: the signature covers `preset:NAME/<image>` exactly as it would
// cover options):
//   /<signature>/preset:NAME/<image>   any preset
//   /unsafe/preset:NAME/<image>        any preset, when security.allow_unsafe
//   /preset:NAME/<image>               public presets only, no signature
//
// Thread-safety: immutable after construction.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "conf/base/status.h"
#include "conf/config.h"

namespace thimble::proxy {

class PresetTable {
 public:
  PresetTable() = default;
  // Fails, naming the preset, when its options do not parse as Thumbor options.
  static Result<PresetTable> from(const std::map<std::string, conf::Preset>& presets);

  // `preset:NAME/<image>` → `<options>/<image>`. `signed_url` tells whether the URL carried a
  // valid signature (or allowed `unsafe`); without one only public presets answer.
  // Unknown preset → 400; a signed-only preset without signature → 403.
  struct Expansion {
    std::string path;      // `<options>/<image>`
    std::size_t image_at;  // where <image> starts in `path`
    std::string_view image() const { return std::string_view(path).substr(image_at); }
  };
  Result<Expansion> expand(std::string_view preset_and_image, bool signed_url) const;

  // After a preset only the image may follow: a spec parsed from an expansion whose image is not
  // all that followed the preset took more options from the URL (a format, a quality, a
  // watermark), which would make sizes and answers the configuration never named. 400.
  static Status check_image_only(const Expansion& expansion, std::string_view parsed_image);

  bool empty() const { return presets_.empty(); }

  static constexpr std::string_view kPrefix = "preset:";

 private:
  std::map<std::string, conf::Preset, std::less<>> presets_;
};

}  // namespace thimble::proxy
