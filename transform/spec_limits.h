// SpecLimits: what one URL may ask of this server (how many filters, how large their costly
// arguments), checked after parsing so the refusal names the configured limit.
#pragma once

#include <string>
#include <string_view>

#include "conf/base/status.h"

namespace thimble::transform {

struct SpecLimits {
  int max_filters = 32;                // pixel filters in one URL
  int max_blur_radius = 150;           // blur(radius)
  int max_convolution_size = 15;       // convolution(): rows and columns of the matrix
  int max_round_corner_radius = 1000;  // round_corner(): each radius
  int max_watermarks = 5;              // watermark() calls
  int min_max_bytes = 1024;            // max_bytes(): the smallest target accepted
};

// The 400 for `what` over `limit`: "<what> is limited to <limit> on this server".
inline Status over_limit(std::string_view what, int limit) {
  return {Code::kBadRequest,
          std::string(what) + " is limited to " + std::to_string(limit) + " on this server"};
}

}  // namespace thimble::transform
