#include "transform/icc.h"

#include <lcms2.h>
#include <zlib.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <unordered_map>
#include <vector>

#include "transform/heif_header.h"

namespace thimble::transform {
namespace {

std::uint32_t be16(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) << 8 | p[1];
}
std::uint32_t be32(const std::uint8_t* p) {
  return be16(p) << 16 | be16(p + 2);
}
std::uint32_t le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// JPEG: APP2 segments "ICC_PROFILE\0" + sequence number (1-based) + count + data, before SOS.
std::optional<std::string> jpeg_profile(std::span<const std::uint8_t> d) {
  static constexpr char kTag[] = "ICC_PROFILE";  // 12 bytes with its NUL
  std::array<std::string, 256> parts;
  int count = 0, seen = 0;
  std::size_t total = 0;
  std::size_t at = 2;  // after SOI
  while (at + 4 <= d.size()) {
    if (d[at] != 0xFF) return std::nullopt;
    const std::uint8_t marker = d[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) break;  // SOS or EOI: no more header
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;
      continue;
    }
    const std::size_t length = be16(&d[at + 2]);
    if (length < 2 || at + 2 + length > d.size()) return std::nullopt;
    const std::uint8_t* body = &d[at + 4];
    const std::size_t size = length - 2;
    if (marker == 0xE2 && size > 14 && std::memcmp(body, kTag, sizeof kTag) == 0) {
      const int sequence = body[12], of = body[13];
      if (sequence == 0 || of == 0 || sequence > of || (count && of != count)) return std::nullopt;
      count = of;
      std::string& part = parts[static_cast<std::size_t>(sequence - 1)];
      if (!part.empty()) return std::nullopt;  // the same part twice
      part.assign(reinterpret_cast<const char*>(body + 14), size - 14);
      total += part.size();
      if (total > kMaxIccProfileBytes) return std::nullopt;
      ++seen;
    }
    at += 2 + length;
  }
  if (count == 0 || seen != count) return std::nullopt;
  std::string profile;
  profile.reserve(total);
  for (int i = 0; i < count; ++i) profile += parts[static_cast<std::size_t>(i)];
  return profile;
}

// PNG: an iCCP chunk before IDAT: name, NUL, compression method 0, zlib data.
std::optional<std::string> png_profile(std::span<const std::uint8_t> d) {
  std::size_t at = 8;
  while (at + 12 <= d.size()) {
    const std::size_t length = be32(&d[at]);
    const char* type = reinterpret_cast<const char*>(&d[at + 4]);
    if (length > d.size() - at - 12) return std::nullopt;
    if (std::memcmp(type, "IDAT", 4) == 0 || std::memcmp(type, "IEND", 4) == 0) break;
    if (std::memcmp(type, "iCCP", 4) == 0) {
      const std::uint8_t* body = &d[at + 8];
      const void* nul = std::memchr(body, 0, std::min<std::size_t>(length, 80));
      if (!nul) return std::nullopt;
      const std::size_t name =
          static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - body);
      if (name + 2 > length || body[name + 1] != 0) return std::nullopt;
      // Inflate at most kMaxIccProfileBytes: a small chunk may claim a huge profile.
      std::string out(kMaxIccProfileBytes, '\0');
      z_stream z{};
      if (inflateInit(&z) != Z_OK) return std::nullopt;
      z.next_in = const_cast<Bytef*>(body + name + 2);
      z.avail_in = static_cast<uInt>(length - name - 2);
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int result = inflate(&z, Z_FINISH);
      const std::size_t produced = out.size() - z.avail_out;
      inflateEnd(&z);
      if (result != Z_STREAM_END) return std::nullopt;
      out.resize(produced);
      return out;
    }
    at += 12 + length;
  }
  return std::nullopt;
}

// WebP: an extended file (VP8X) with an ICCP chunk.
std::optional<std::string> webp_profile(std::span<const std::uint8_t> d) {
  std::size_t at = 12;
  while (at + 8 <= d.size()) {
    const std::size_t size = le32(&d[at + 4]);
    if (size > d.size() - at - 8) return std::nullopt;
    if (std::memcmp(&d[at], "ICCP", 4) == 0) {
      if (size > kMaxIccProfileBytes) return std::nullopt;
      return std::string(reinterpret_cast<const char*>(&d[at + 8]), size);
    }
    if (std::memcmp(&d[at], "VP8 ", 4) == 0 || std::memcmp(&d[at], "VP8L", 4) == 0) break;
    at += 8 + size + (size & 1);
  }
  return std::nullopt;
}

// An RGB profile for nclx code points (H.273) that are not sRGB's: Display P3 and BT.2020
// primaries, with the sRGB or the BT.709 tone curve. Others (PQ and HLG, which need tone mapping)
// are left alone. Made once per kind.
std::optional<std::string> nclx_profile(const NclxColour& nclx) {
  struct Primaries {
    cmsCIExyYTRIPLE xy;
  };
  static const Primaries kP3 = {{{0.680, 0.320, 1}, {0.265, 0.690, 1}, {0.150, 0.060, 1}}};
  static const Primaries kBt2020 = {{{0.708, 0.292, 1}, {0.170, 0.797, 1}, {0.131, 0.046, 1}}};
  const Primaries* primaries = nclx.primaries == 12  ? &kP3
                               : nclx.primaries == 9 ? &kBt2020
                                                     : nullptr;
  const bool srgb_curve = nclx.transfer == 13 || nclx.transfer == 2;
  const bool bt709_curve =
      nclx.transfer == 1 || nclx.transfer == 6 || nclx.transfer == 14 || nclx.transfer == 15;
  if (!primaries || (!srgb_curve && !bt709_curve)) return std::nullopt;
  static std::mutex made_mutex;
  static std::unordered_map<int, std::string> made;
  const int key = nclx.primaries * 2 + (srgb_curve ? 1 : 0);
  std::lock_guard lock(made_mutex);
  if (auto found = made.find(key); found != made.end()) return found->second;
  // sRGB: 2.4 with a linear toe; BT.709: 1/0.45 with its own.
  const cmsFloat64Number srgb[5] = {2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045};
  const cmsFloat64Number bt709[5] = {1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081};
  cmsToneCurve* curve = cmsBuildParametricToneCurve(nullptr, 4, srgb_curve ? srgb : bt709);
  cmsToneCurve* curves[3] = {curve, curve, curve};
  cmsCIExyY d65 = {0.3127, 0.3290, 1};
  cmsHPROFILE profile = cmsCreateRGBProfile(&d65, &primaries->xy, curves);
  cmsFreeToneCurve(curve);
  if (!profile) return std::nullopt;
  cmsUInt32Number size = 0;
  std::string bytes;
  if (cmsSaveProfileToMem(profile, nullptr, &size) && size > 0) {
    bytes.resize(size);
    if (!cmsSaveProfileToMem(profile, bytes.data(), &size)) bytes.clear();
  }
  cmsCloseProfile(profile);
  if (bytes.empty()) return std::nullopt;
  return made.emplace(key, std::move(bytes)).first->second;
}

// HEIC and AVIF: the primary image's `colr` ICC profile, else its nclx description.
std::optional<std::string> heif_profile(std::span<const std::uint8_t> d) {
  Result<HeifHeader> header = read_heif_header(d);
  if (!header.ok()) return std::nullopt;
  if (!header->icc.empty()) {
    if (header->icc.size() > kMaxIccProfileBytes) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(header->icc.data()), header->icc.size());
  }
  if (header->nclx) return nclx_profile(*header->nclx);
  return std::nullopt;
}

// One profile → sRGB transform per (profile, input layout), made once and shared.
class Transforms {
 public:
  enum class Input { kBgr, kBgra, kGrey, kCmyk, kCmykInverted };
  struct Entry {
    std::shared_ptr<void> transform;  // a cmsHTRANSFORM; null when there is nothing to do
    std::string why;                  // why the profile is ignored; "" when it is used
  };

  Entry get(const std::string& profile, Input input) {
    // Large profiles (camera LUTs) are converted without being kept: the set stays small.
    if (profile.size() > kLargestKept) return make(profile, input);
    const std::string key = std::to_string(static_cast<int>(input)) + ":" + profile;
    {
      std::lock_guard lock(mutex_);
      if (auto found = made_.find(key); found != made_.end()) return found->second;
    }
    Entry entry = make(profile, input);
    std::lock_guard lock(mutex_);
    if (made_.size() >= kKept) made_.clear();  // a bounded set: real sites use a handful
    made_.emplace(key, entry);
    return entry;
  }

 private:
  static constexpr std::size_t kKept = 64;  // at most 64 x 256 KiB of keys
  static constexpr std::size_t kLargestKept = 256u << 10;

  // Whether `transform` moves no 8-bit value by more than one level (an sRGB profile, as most
  // web images carry): then there is nothing to convert, and the request pays nothing.
  static bool changes_nothing(cmsHTRANSFORM transform, int channels) {
    std::vector<std::uint8_t> samples;
    for (int b = 0; b < 256; b += 15) {
      for (int g = 0; g < 256; g += 15) {
        for (int r = 0; r < 256; r += 15) {
          samples.push_back(static_cast<std::uint8_t>(b));
          samples.push_back(static_cast<std::uint8_t>(g));
          samples.push_back(static_cast<std::uint8_t>(r));
          if (channels == 4) samples.push_back(255);
        }
      }
    }
    std::vector<std::uint8_t> out(samples.size());
    cmsDoTransform(
        transform, samples.data(), out.data(),
        static_cast<cmsUInt32Number>(samples.size() / static_cast<std::size_t>(channels)));
    for (std::size_t i = 0; i < samples.size(); ++i) {
      if (std::abs(static_cast<int>(samples[i]) - static_cast<int>(out[i])) > 1) return false;
    }
    return true;
  }

  static Entry make(const std::string& profile, Input input) {
    cmsHPROFILE source =
        cmsOpenProfileFromMem(profile.data(), static_cast<cmsUInt32Number>(profile.size()));
    if (!source) return {nullptr, "the embedded ICC profile is malformed"};
    const bool rgb = input == Input::kBgr || input == Input::kBgra;
    const cmsColorSpaceSignature wanted = rgb                     ? cmsSigRgbData
                                          : input == Input::kGrey ? cmsSigGrayData
                                                                  : cmsSigCmykData;
    if (cmsGetColorSpace(source) != wanted) {
      cmsCloseProfile(source);
      return {nullptr, rgb ? "the embedded ICC profile is not an RGB profile"
                           : "the embedded ICC profile does not describe the image's colours"};
    }
    cmsHPROFILE srgb = cmsCreate_sRGBProfile();
    const cmsUInt32Number from = input == Input::kBgra           ? TYPE_BGRA_8
                                 : input == Input::kGrey         ? TYPE_GRAY_8
                                 : input == Input::kCmyk         ? TYPE_CMYK_8
                                 : input == Input::kCmykInverted ? TYPE_CMYK_8_REV
                                                                 : TYPE_BGR_8;
    const cmsUInt32Number to = input == Input::kBgra ? TYPE_BGRA_8 : TYPE_BGR_8;
    // NOCACHE: no per-transform pixel cache, so one transform serves several threads at once.
    cmsHTRANSFORM transform =
        cmsCreateTransform(source, from, srgb, to, INTENT_PERCEPTUAL,
                           cmsFLAGS_NOCACHE | (input == Input::kBgra ? cmsFLAGS_COPY_ALPHA : 0));
    cmsCloseProfile(source);
    cmsCloseProfile(srgb);
    if (!transform) return {nullptr, "the embedded ICC profile cannot be converted to sRGB"};
    std::shared_ptr<void> handle(
        transform, [](void* t) { cmsDeleteTransform(static_cast<cmsHTRANSFORM>(t)); });
    if (rgb && changes_nothing(transform, input == Input::kBgra ? 4 : 3)) return {nullptr, ""};
    return {std::move(handle), ""};
  }

  std::mutex mutex_;
  std::unordered_map<std::string, Entry> made_;
};

Transforms& transforms() {
  static Transforms* all = [] {
    cmsSetLogErrorHandler(nullptr);  // failures are values here, never stderr
    return new Transforms();
  }();
  return *all;
}

}  // namespace

std::optional<std::string> embedded_icc_profile(std::span<const std::uint8_t> data,
                                                ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return data.size() > 4 ? jpeg_profile(data) : std::nullopt;
    case ImageFormat::kPng: return data.size() > 8 ? png_profile(data) : std::nullopt;
    case ImageFormat::kWebp: return data.size() > 12 ? webp_profile(data) : std::nullopt;
    case ImageFormat::kHeic:
    case ImageFormat::kAvif: return heif_profile(data);
    case ImageFormat::kGif: return std::nullopt;
  }
  return std::nullopt;
}

std::string convert_to_srgb(cv::Mat& image, const std::string& profile, bool grey_source) {
  if (image.depth() != CV_8U || (image.channels() != 3 && image.channels() != 4)) {
    return "the image is not 8-bit colour";
  }
  using Input = Transforms::Input;
  if (grey_source) {
    // A grey original was decoded to three equal channels: its profile maps the grey to sRGB.
    const Transforms::Entry entry = transforms().get(profile, Input::kGrey);
    if (!entry.transform) return entry.why;
    cv::Mat grey;
    cv::extractChannel(image, grey, 0);
    cv::Mat bgr(image.size(), CV_8UC3);
    if (!grey.isContinuous()) grey = grey.clone();
    cmsDoTransform(static_cast<cmsHTRANSFORM>(entry.transform.get()), grey.data, bgr.data,
                   static_cast<cmsUInt32Number>(grey.total()));
    if (image.channels() == 4) {
      cv::Mat alpha;
      cv::extractChannel(image, alpha, 3);
      cv::Mat with_alpha;
      cv::merge(std::vector<cv::Mat>{bgr, alpha}, with_alpha);
      image = with_alpha;
    } else {
      image = bgr;
    }
    return "";
  }
  const Transforms::Entry entry =
      transforms().get(profile, image.channels() == 4 ? Input::kBgra : Input::kBgr);
  if (!entry.transform) return entry.why;  // ignored, or already sRGB
  if (!image.isContinuous()) image = image.clone();
  cmsDoTransform(static_cast<cmsHTRANSFORM>(entry.transform.get()), image.data, image.data,
                 static_cast<cmsUInt32Number>(image.total()));
  return "";
}

std::shared_ptr<void> cmyk_to_srgb(const std::string& profile, bool inverted) {
  return transforms()
      .get(profile, inverted ? Transforms::Input::kCmykInverted : Transforms::Input::kCmyk)
      .transform;
}

void convert_cmyk_row(void* transform, const std::uint8_t* cmyk, std::uint8_t* bgr, int width) {
  cmsDoTransform(static_cast<cmsHTRANSFORM>(transform), cmyk, bgr,
                 static_cast<cmsUInt32Number>(width));
}

}  // namespace thimble::transform
