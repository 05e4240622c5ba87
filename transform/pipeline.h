// render(): one original's bytes + a ThumbnailSpec → the encoded thumbnail.
//
// The order of work is chosen so that as little as possible is decoded and moved:
//   sniff the header → refuse over-limit or unsupported images (no pixel allocated yet)
//   → plan the geometry → decode (JPEG at 1/2, 1/4 or 1/8 scale when the output is small)
//   → crop the region of interest (a view, no copy) → resize (premultiplied when there is alpha)
//   → apply EXIF orientation and flips to the small result → encode.
// Each step returns early when it has nothing to do. The source is decoded exactly once.
// The steps are a list over one context (render_steps.h): the deadline check and the stage
// timing are in the loop that runs them, and debug/ and meta/ share the leading steps.
//
// OpenCV exceptions never escape: they become Status values (415 for undecodable input, 500 for
// encoder failures). Thread-safe: render() shares no state between calls; call
// use_one_thread_per_render() once at start so parallelism comes from concurrent requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conf/base/deadline.h"
#include "conf/base/status.h"
#include "conf/config.h"
#include "transform/plan.h"
#include "transform/sniff.h"
#include "transform/spec.h"

namespace cv {
class Mat;
}

namespace thimble::transform {

// What render() reads from the configuration: the `limits`, `output` and `smart` sections as
// they are (conf/config.h writes their defaults, once). render() reads the source and output
// limits, the output settings and the face cascade; the rest is for the service.
struct RenderSettings : conf::LimitsConfig, conf::OutputConfig, conf::SmartConfig {
  RenderSettings() = default;
  RenderSettings(const conf::LimitsConfig& limits, const conf::OutputConfig& output,
                 const conf::SmartConfig& smart)
      : conf::LimitsConfig(limits), conf::OutputConfig(output), conf::SmartConfig(smart) {}
};

// Remembers smart-detection results per original, so the second size of one photo does not
// detect again. Implementations must be thread-safe.
class FocalPointMemory {
 public:
  virtual ~FocalPointMemory() = default;
  virtual std::optional<std::vector<FocalPoint>> recall(const std::string& key) = 0;
  virtual void remember(const std::string& key, const std::vector<FocalPoint>& points) = 0;
};

// Where smart/ may find and keep focal points: `key` names one version of one original
// (its source key and validator). A null memory detects every time.
struct FocalPointCache {
  FocalPointMemory* memory = nullptr;
  std::string key;
};

// Wall time spent in each stage, in milliseconds; each step counts in one stage, so they add up
// (smart_ms is face detection alone, transform_ms the rest between decode and encode).
struct StageTimes {
  double sniff_ms = 0, decode_ms = 0, smart_ms = 0, transform_ms = 0, encode_ms = 0;
};

struct Thumbnail {
  std::string bytes;
  ImageFormat format = ImageFormat::kJpeg;
  Size size;
  int frames = 1;    // frames written (an animation keeps them all)
  ImageInfo source;  // what the header said
  int shrink_on_load = 1;
  int auto_quality = 0;  // the quality quality(auto) / output.quality: auto chose; 0 otherwise
  std::vector<FocalPoint> focal_points;  // those that decided a smart crop
  Rect region;                           // the part of the (shown) source that was kept
  StageTimes times;
  // What the render chose to ignore and the operator may want to know (a malformed colour
  // profile, say), for the log; never an error.
  std::vector<std::string> notes;
};

// The output format: format() in the URL, else the one negotiated from Accept (auto-WebP), else
// the source's own format; for HEIC and AVIF sources JPEG, or PNG with alpha. AVIF negotiated for
// an animated source gives animated WebP.
ImageFormat output_format(const ThumbnailSpec& spec, const ImageInfo& source,
                          std::optional<ImageFormat> negotiated);

// Sniffs and checks an original against the limits without decoding it. A `header` read before
// (an original kept in memory) is trusted instead of reading it again; the limits are checked.
Result<ImageInfo> inspect(std::span<const std::uint8_t> original, const RenderSettings& settings,
                          const std::optional<ImageInfo>& header = std::nullopt);

// The watermark originals a URL names (source key → bytes), fetched by the caller from the same
// source; render() decodes each within the same limits as any original.
using WatermarkSources = std::map<std::string, std::string_view>;

// What one request brings to render() besides the original, its spec and the settings.
struct RenderRequest {
  std::optional<ImageFormat> negotiated;  // the format chosen from Accept (auto-WebP)
  FocalPointCache focal_cache;
  WatermarkSources watermarks;
  // The request's processing deadline: once it has passed, render() stops before its next step
  // (and between max_bytes() encodes) with Code::kOverloaded. JPEG and PNG decodes also stop
  // inside, between scans and rows.
  Deadline deadline;
  // The original's header when it was read before (see inspect()).
  std::optional<ImageInfo> header;
};

Result<Thumbnail> render(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                         const RenderSettings& settings, const RenderRequest& request = {});

// The focal points of a decoded image for smart/: recalled from `cache`, else detected on a
// small copy (and remembered). `stored` is in stored orientation; the points are in the
// coordinates of the image as shown (`shown`).
std::vector<FocalPoint> find_focal_points(const cv::Mat& stored, int orientation, Size shown,
                                          const RenderSettings& settings,
                                          const FocalPointCache& cache);

// Makes OpenCV run each operation on the calling thread only.
void use_one_thread_per_render();

}  // namespace thimble::transform
