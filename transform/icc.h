// Colour management: an original's embedded ICC profile (JPEG APP2 "ICC_PROFILE" segments, a PNG
// iCCP chunk, a WebP ICCP chunk) is read from its header, and the thumbnail — the small image,
// after the resize — is converted from that profile to sRGB with LittleCMS. Browsers assume sRGB
// for an image without a profile, and Thimble writes none: a Display P3 photo from a phone would
// otherwise come out visibly desaturated.
//
// CMYK JPEGs with a CMYK profile are converted through it while decoding (JPEG rows are CMYK
// only there); grey originals with a grey profile on the thumbnail.
//
// Transforms are made once per profile and kept (a bounded set, shared by all renders). A profile
// that is malformed, over the size limit or not an RGB profile is ignored: the image is left as
// decoded and the reason is returned for the log, never an error for the request.
//
// Internal to transform/. Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
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

// Converts an 8-bit BGR or BGRA `image` in place from `profile` to sRGB (alpha untouched). With
// `grey_source` the image is a grey original decoded to three equal channels, and `profile` a grey
// profile. Returns "" when converted, else why the profile was ignored (the image is then
// unchanged).
std::string convert_to_srgb(cv::Mat& image, const std::string& profile, bool grey_source = false);

// The transform of a CMYK `profile` to 8-bit sRGB BGR for CMYK samples (`inverted`: Adobe's
// inverted CMYK, as Photoshop writes JPEGs), shared and kept like the others; null when `profile`
// is not a usable CMYK profile. The JPEG decoder converts rows through it (convert_cmyk_row).
std::shared_ptr<void> cmyk_to_srgb(const std::string& profile, bool inverted);
void convert_cmyk_row(void* transform, const std::uint8_t* cmyk, std::uint8_t* bgr, int width);

}  // namespace thimble::transform
