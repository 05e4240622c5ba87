// Colour management: an original's embedded ICC profile (JPEG APP2 "ICC_PROFILE" segments, a PNG
// iCCP chunk, a WebP ICCP chunk) is read from its header, and the thumbnail — the small image,
// after the resize — is converted from that profile to sRGB with LittleCMS. Browsers assume sRGB
// for an image without a profile, and Thimble writes none: a Display P3 photo from a phone would
// otherwise come out visibly desaturated.
//
// Transforms are made once per profile and kept (a bounded set, shared by all renders). A profile
// that is malformed, over the size limit or not an RGB profile is ignored: the image is left as
// decoded and the reason is returned for the log, never an error for the request.
//
// Internal to transform/. Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <optional>
#include <span>
#include <string>

#include "transform/image_format.h"

namespace thimble::transform {

// Profiles larger than this are ignored (real ones are a few hundred bytes to a few hundred KB).
inline constexpr std::size_t kMaxIccProfileBytes = 4u << 20;

// The ICC profile embedded in `data` (a `format` image), read from the header only; nullopt when
// there is none, it is incomplete or larger than kMaxIccProfileBytes.
std::optional<std::string> embedded_icc_profile(std::span<const std::uint8_t> data,
                                                ImageFormat format);

// Converts an 8-bit BGR or BGRA `image` in place from `profile` to sRGB (alpha untouched).
// Returns "" when converted, else why the profile was ignored (the image is then unchanged).
std::string convert_to_srgb(cv::Mat& image, const std::string& profile);

}  // namespace thimble::transform
