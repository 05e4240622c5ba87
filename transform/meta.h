// describe(): the answer to a `meta/` URL: what render() would do to an original, as Thumbor's
// JSON (source, operations in order, target, focal points), computed from the header and the
// Plan alone: nothing is decoded, so it costs microseconds.
//
//   {"thumbor": {"source": {"url", "width", "height", "frameCount", "format"},
//                "operations": [{"type": "crop", "left", "top", "right", "bottom"},
//                               {"type": "resize", "width", "height"},
//                               {"type": "flip_horizontally"}, {"type": "flip_vertically"}],
//                "target": {"width", "height", "format"},
//                "focal_points": [{"x", "y", "z", "height", "width", "origin"}]}}
//
// Sizes are those of the image as shown (after EXIF orientation); a second crop is relative to
// the result of the first, as Thumbor's engine records it. `format` is Thimble's addition.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "conf/base/status.h"
#include "transform/pipeline.h"

namespace thimble::transform {

// With trim or smart/ the pixels are needed: the image is decoded (trim in full, smart/ at the
// smallest JPEG scale that still gives the detector its copy).
// Of `request`, the negotiated format, the focal-point cache and a known header count.
Result<std::string> describe(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                             const RenderSettings& settings, const RenderRequest& request = {});

}  // namespace thimble::transform
