// SpecLimits: what one URL may ask of this server (how many filters, how large their costly
// arguments), checked after parsing so the refusal names the configured limit.
#pragma once

#include <string>
#include <string_view>

#include "conf/base/status.h"
#include "conf/config.h"

namespace thimble::transform {

// The `limits` section as it is (conf/config.h writes its defaults): a URL is held to
// max_filters, max_blur_radius, max_convolution_size, max_round_corner_radius, max_watermarks and
// min_max_bytes.
using SpecLimits = conf::LimitsConfig;

// The 400 for `what` over `limit`: "<what> is limited to <limit> on this server".
inline Status over_limit(std::string_view what, int limit) {
  return {Code::kBadRequest,
          std::string(what) + " is limited to " + std::to_string(limit) + " on this server"};
}

}  // namespace thimble::transform
