#include "vips_baseline.h"

#include <vips/vips.h>
#include <webp/mux.h>

namespace thimble::bench {

bool start_vips(const char* argv0) {
  if (VIPS_INIT(argv0) != 0) return false;
  // libvips warns once per HEIF file that it ignores nclx colour; the figures are what matter.
  g_log_set_handler(
      "VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {},
      nullptr);
  vips_concurrency_set(1);
  vips_cache_set_max(0);
  return true;
}

std::string libvips_version() {
  return vips_version_string();
}

namespace {

// libvips 8.14's webpsave keeps the original's EXIF (with its embedded preview, several KB)
// even with strip: the chunks are taken out here, so the bytes compared are the image's.
std::string without_metadata(const std::string& webp) {
  WebPData data{reinterpret_cast<const std::uint8_t*>(webp.data()), webp.size()};
  WebPMux* mux = WebPMuxCreate(&data, 0);
  if (mux == nullptr) return webp;
  WebPMuxDeleteChunk(mux, "EXIF");
  WebPMuxDeleteChunk(mux, "XMP ");
  WebPMuxDeleteChunk(mux, "ICCP");
  WebPData assembled;
  WebPDataInit(&assembled);
  std::string out = webp;
  if (WebPMuxAssemble(mux, &assembled) == WEBP_MUX_OK) {
    out.assign(reinterpret_cast<const char*>(assembled.bytes), assembled.size);
  }
  WebPDataClear(&assembled);
  WebPMuxDelete(mux);
  return out;
}

}  // namespace

std::string vips_thumbnail(std::span<const std::uint8_t> source, const VipsTarget& target,
                           std::string& error) {
  VipsImage* image = nullptr;
  VipsInteresting interesting = !target.crop   ? VIPS_INTERESTING_NONE
                                : target.smart ? VIPS_INTERESTING_ATTENTION
                                               : VIPS_INTERESTING_CENTRE;
  // vips_thumbnail_buffer takes a non-const pointer but only reads from it.
  void* data = const_cast<std::uint8_t*>(source.data());
  if (vips_thumbnail_buffer(data, source.size(), &image, target.width, "height", target.height,
                            "crop", interesting, "size", VIPS_SIZE_DOWN, "option_string",
                            target.animated ? "n=-1" : "", nullptr) != 0) {
    error = vips_error_buffer();
    vips_error_clear();
    return {};
  }
  void* buffer = nullptr;
  std::size_t length = 0;
  int rc = 0;
  // Metadata stripped, as Thimble writes none (and as image services run libvips): the bytes
  // compared are the image's.
  switch (target.format) {
    case transform::ImageFormat::kWebp:
      rc = vips_webpsave_buffer(image, &buffer, &length, "Q", target.quality, "strip", TRUE,
                                nullptr);
      break;
    case transform::ImageFormat::kPng:
      rc = vips_pngsave_buffer(image, &buffer, &length, "compression", 6, "strip", TRUE, nullptr);
      break;
    case transform::ImageFormat::kGif:
      rc = vips_gifsave_buffer(image, &buffer, &length, "strip", TRUE, nullptr);
      break;
    case transform::ImageFormat::kAvif:
      rc = vips_heifsave_buffer(image, &buffer, &length, "Q", target.quality, "compression",
                                VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort", target.effort, "strip",
                                TRUE, nullptr);
      break;
    case transform::ImageFormat::kHeic:
      rc = vips_heifsave_buffer(image, &buffer, &length, "Q", target.quality, "strip", TRUE,
                                nullptr);
      break;
    case transform::ImageFormat::kJpeg:
      rc = vips_jpegsave_buffer(image, &buffer, &length, "Q", target.quality, "strip", TRUE,
                                nullptr);
      break;
  }
  g_object_unref(image);
  if (rc != 0) {
    error = vips_error_buffer();
    vips_error_clear();
    return {};
  }
  std::string out(static_cast<const char*>(buffer), length);
  g_free(buffer);
  if (target.format == transform::ImageFormat::kWebp && !target.animated) {
    out = without_metadata(out);
  }
  return out;
}

}  // namespace thimble::bench
