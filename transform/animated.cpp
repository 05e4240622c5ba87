#include "transform/animated.h"

#include <gif_lib.h>
#include <webp/demux.h>

#include <algorithm>
#include <cstring>

namespace thimble::transform {
namespace {

Status corrupt() {
  return {Code::kUnsupportedMedia, "the image data is corrupt"};
}

// GIF through giflib, record by record: only the canvas, the saved canvas for "restore to
// previous" and one row of indexes are held.
class GifReader final : public FrameReader {
 public:
  GifReader(std::span<const std::uint8_t> data, const ImageInfo& info, const DecodeBudget& budget)
      : data_(data), info_(info), budget_(budget) {}
  ~GifReader() override {
    if (gif_) DGifCloseFile(gif_, nullptr);
  }

  Status open() {
    int error = 0;
    gif_ = DGifOpen(this, &GifReader::read, &error);
    if (!gif_) return corrupt();
    if (gif_->SWidth != info_.width || gif_->SHeight != info_.height) {
      return Status(Code::kUnsupportedMedia, "the GIF headers disagree about the image");
    }
    canvas_ = cv::Mat(info_.height, info_.width, CV_8UC4, cv::Scalar::all(0));
    return Status::Ok();
  }

  Result<bool> next(cv::Mat& canvas, int& duration_ms) override {
    if (given_ >= info_.frames) return false;
    if (given_ > 0 && budget_.deadline.passed()) return deadline_passed();
    dispose();
    GraphicsControlBlock control{};
    control.TransparentColor = NO_TRANSPARENT_COLOR;
    while (true) {
      GifRecordType record = UNDEFINED_RECORD_TYPE;
      if (DGifGetRecordType(gif_, &record) == GIF_ERROR) return corrupt();
      if (record == TERMINATE_RECORD_TYPE) return corrupt();  // fewer frames than sniffed
      if (record == EXTENSION_RECORD_TYPE) {
        int code = 0;
        GifByteType* block = nullptr;
        if (DGifGetExtension(gif_, &code, &block) == GIF_ERROR) return corrupt();
        if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] >= 4) {
          DGifExtensionToGCB(block[0], block + 1, &control);
        }
        while (block) {
          if (DGifGetExtensionNext(gif_, &block) == GIF_ERROR) return corrupt();
        }
        continue;
      }
      if (record != IMAGE_DESC_RECORD_TYPE) continue;
      if (DGifGetImageDesc(gif_) == GIF_ERROR) return corrupt();
      if (Status drawn = draw(control); !drawn.ok()) return drawn;
      // The descriptors giflib keeps for every frame are not needed.
      freeing_saved_images();
      break;
    }
    ++given_;
    duration_ms = control.DelayTime * 10;
    canvas = canvas_;
    return true;
  }

 private:
  static int read(GifFileType* gif, GifByteType* into, int wanted) {
    auto* self = static_cast<GifReader*>(gif->UserData);
    const std::size_t n =
        std::min(static_cast<std::size_t>(std::max(wanted, 0)), self->data_.size() - self->at_);
    std::memcpy(into, self->data_.data() + self->at_, n);
    self->at_ += n;
    return static_cast<int>(n);
  }

  // Undoes the previous frame as its disposal method says.
  void dispose() {
    if (last_disposal_ == DISPOSE_BACKGROUND && !last_area_.empty()) {
      canvas_(last_area_).setTo(cv::Scalar::all(0));
    } else if (last_disposal_ == DISPOSE_PREVIOUS && !saved_.empty()) {
      saved_.copyTo(canvas_);
    }
    last_disposal_ = DISPOSAL_UNSPECIFIED;
  }

  Status draw(const GraphicsControlBlock& control) {
    const GifImageDesc& d = gif_->Image;
    const ColorMapObject* colours = d.ColorMap ? d.ColorMap : gif_->SColorMap;
    if (!colours || d.Width <= 0 || d.Height <= 0 || d.Width > 65535 || d.Height > 65535) {
      return corrupt();
    }
    const cv::Rect frame(d.Left, d.Top, d.Width, d.Height);
    const cv::Rect area = frame & cv::Rect(0, 0, canvas_.cols, canvas_.rows);
    if (control.DisposalMode == DISPOSE_PREVIOUS) canvas_.copyTo(saved_);
    std::vector<GifPixelType> row(static_cast<std::size_t>(d.Width));
    // Interlaced frames store rows in four passes.
    constexpr int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
    const int passes = d.Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; ++pass) {
      const int start = d.Interlace ? kStart[pass] : 0, step = d.Interlace ? kStep[pass] : 1;
      for (int y = start; y < d.Height; y += step) {
        if (DGifGetLine(gif_, row.data(), d.Width) == GIF_ERROR) return corrupt();
        const int canvas_y = d.Top + y;
        if (canvas_y < area.y || canvas_y >= area.y + area.height) continue;
        auto* out = canvas_.ptr<cv::Vec4b>(canvas_y);
        for (int x = area.x; x < area.x + area.width; ++x) {
          const int index = row[static_cast<std::size_t>(x - d.Left)];
          if (index == control.TransparentColor || index >= colours->ColorCount) continue;
          const GifColorType& c = colours->Colors[index];
          out[x] = cv::Vec4b(c.Blue, c.Green, c.Red, 255);
        }
      }
    }
    last_disposal_ = control.DisposalMode;
    last_area_ = area;
    return Status::Ok();
  }

  void freeing_saved_images() {
    for (int i = 0; i < gif_->ImageCount; ++i) {
      if (gif_->SavedImages[i].ImageDesc.ColorMap) {
        GifFreeMapObject(gif_->SavedImages[i].ImageDesc.ColorMap);
        gif_->SavedImages[i].ImageDesc.ColorMap = nullptr;
      }
    }
  }

  std::span<const std::uint8_t> data_;
  std::size_t at_ = 0;
  ImageInfo info_;
  DecodeBudget budget_;
  GifFileType* gif_ = nullptr;
  cv::Mat canvas_, saved_;
  int last_disposal_ = DISPOSAL_UNSPECIFIED;
  cv::Rect last_area_;
  int given_ = 0;
};

// Animated WebP through libwebp's WebPAnimDecoder, which blends and disposes.
class WebpReader final : public FrameReader {
 public:
  WebpReader(std::span<const std::uint8_t> data, const ImageInfo& info, const DecodeBudget& budget)
      : info_(info), budget_(budget) {
    input_.bytes = data.data();
    input_.size = data.size();
  }
  ~WebpReader() override {
    if (decoder_) WebPAnimDecoderDelete(decoder_);
  }

  Status open() {
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) return corrupt();
    options.color_mode = MODE_BGRA;
    options.use_threads = 0;
    decoder_ = WebPAnimDecoderNew(&input_, &options);
    if (!decoder_) return corrupt();
    WebPAnimInfo anim{};
    if (!WebPAnimDecoderGetInfo(decoder_, &anim)) return corrupt();
    if (static_cast<int>(anim.canvas_width) != info_.width ||
        static_cast<int>(anim.canvas_height) != info_.height ||
        static_cast<int>(anim.frame_count) != info_.frames) {
      return Status(Code::kUnsupportedMedia, "the WebP headers disagree about the animation");
    }
    return Status::Ok();
  }

  Result<bool> next(cv::Mat& canvas, int& duration_ms) override {
    if (given_ >= info_.frames || !WebPAnimDecoderHasMoreFrames(decoder_)) return false;
    if (given_ > 0 && budget_.deadline.passed()) return deadline_passed();
    std::uint8_t* pixels = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder_, &pixels, &timestamp)) return corrupt();
    duration_ms = std::max(0, timestamp - last_timestamp_);
    last_timestamp_ = timestamp;
    ++given_;
    canvas = cv::Mat(info_.height, info_.width, CV_8UC4, pixels);
    return true;
  }

 private:
  WebPData input_{};
  ImageInfo info_;
  DecodeBudget budget_;
  WebPAnimDecoder* decoder_ = nullptr;
  int last_timestamp_ = 0;
  int given_ = 0;
};

}  // namespace

Result<cv::Mat> first_frame(FrameReader& reader, int& duration_ms) {
  cv::Mat canvas;
  Result<bool> read = reader.next(canvas, duration_ms);
  if (!read.ok()) return read.status();
  if (!*read) return corrupt();
  return canvas.clone();
}

Result<std::unique_ptr<FrameReader>> open_frames(std::span<const std::uint8_t> data,
                                                 const ImageInfo& info,
                                                 const DecodeBudget& budget) {
  if (info.format == ImageFormat::kGif) {
    auto reader = std::make_unique<GifReader>(data, info, budget);
    if (Status opened = reader->open(); !opened.ok()) return opened;
    return std::unique_ptr<FrameReader>(std::move(reader));
  }
  auto reader = std::make_unique<WebpReader>(data, info, budget);
  if (Status opened = reader->open(); !opened.ok()) return opened;
  return std::unique_ptr<FrameReader>(std::move(reader));
}

}  // namespace thimble::transform
