#include "derived.h"

#include <libheif/heif.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "transform/encode.h"

namespace thimble::bench {
namespace {

namespace fs = std::filesystem;

heif_error written(heif_context*, const void* data, size_t size, void* into) {
  static_cast<std::string*>(into)->append(static_cast<const char*>(data), size);
  return {heif_error_Ok, heif_suberror_Unspecified, "ok"};
}

// `photo` through libheif's encoder: HEIC (with a thumbnail item, as phones write) or AVIF.
std::string heif_of(const cv::Mat& photo, heif_compression_format compression) {
  heif_context* context = heif_context_alloc();
  heif_encoder* encoder = nullptr;
  heif_context_get_encoder_for_format(context, compression, &encoder);
  heif_encoder_set_lossy_quality(encoder, compression == heif_compression_HEVC ? 80 : 70);
  if (compression == heif_compression_AV1) heif_encoder_set_parameter(encoder, "speed", "8");
  heif_image* image = nullptr;
  heif_image_create(photo.cols, photo.rows, heif_colorspace_RGB, heif_chroma_interleaved_RGB,
                    &image);
  heif_image_add_plane(image, heif_channel_interleaved, photo.cols, photo.rows, 8);
  int stride = 0;
  std::uint8_t* plane = heif_image_get_plane(image, heif_channel_interleaved, &stride);
  cv::Mat rgb(photo.rows, photo.cols, CV_8UC3, plane, static_cast<std::size_t>(stride));
  cv::cvtColor(photo, rgb, cv::COLOR_BGR2RGB);
  heif_image_handle* handle = nullptr;
  heif_context_encode_image(context, image, encoder, nullptr, &handle);
  if (compression == heif_compression_HEVC && handle) {
    heif_context_encode_thumbnail(context, image, handle, encoder, nullptr, 320, nullptr);
  }
  std::string out;
  heif_writer writer{};
  writer.writer_api_version = 1;
  writer.write = written;
  heif_context_write(context, &writer, &out);
  if (handle) heif_image_handle_release(handle);
  heif_image_release(image);
  heif_encoder_release(encoder);
  heif_context_free(context);
  return out;
}

// 8 frames of 480 px panning across `photo`, 100 ms each, looping.
std::string gif_of(const cv::Mat& photo) {
  cv::Mat small;
  const double scale = 720.0 / photo.cols;
  cv::resize(photo, small, cv::Size(), scale, scale, cv::INTER_AREA);
  transform::Frames frames;
  const int width = 480, height = std::min(270, small.rows);
  for (int i = 0; i < 8; ++i) {
    const int x = (small.cols - width) * i / 7;
    frames.images.push_back(small(cv::Rect(x, (small.rows - height) / 2, width, height)).clone());
    frames.durations_ms.push_back(100);
  }
  auto bytes = transform::encode_animation(frames, transform::ImageFormat::kGif, {}, {});
  return bytes.ok() ? *bytes : std::string();
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::vector<DerivedImage> derive(const std::string& kind,
                                 const std::vector<std::pair<std::string, std::string>>& photos,
                                 const fs::path& cache_dir) {
  std::vector<DerivedImage> made;
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  for (std::size_t i = 0; i < photos.size(); ++i) {
    std::string flat = photos[i].first;
    for (char& c : flat) c = c == '/' ? '_' : c;
    const fs::path file =
        cache_dir / (flat + "." + std::to_string(photos[i].second.size()) + "." + kind);
    std::string bytes = fs::exists(file) ? read(file) : std::string();
    if (bytes.empty()) {
      const cv::Mat photo = cv::imdecode(cv::Mat(1, static_cast<int>(photos[i].second.size()),
                                                 CV_8U, const_cast<char*>(photos[i].second.data())),
                                         cv::IMREAD_COLOR);
      if (photo.empty()) continue;
      bytes = kind == "heic"   ? heif_of(photo, heif_compression_HEVC)
              : kind == "avif" ? heif_of(photo, heif_compression_AV1)
                               : gif_of(photo);
      if (bytes.empty()) continue;
      std::ofstream(file, std::ios::binary) << bytes;
    }
    made.push_back({photos[i].first + "." + kind, std::move(bytes), i});
  }
  return made;
}

}  // namespace thimble::bench
