#include "transform/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace thimble::transform {
namespace {

// Area averaging in fixed point: each output pixel is the mean of the source box it covers, with
// the boxes' partly covered edge pixels weighed by the part covered (what cv::INTER_AREA computes
// in floating point, within one level). Weights are in units of 1/2^16: every sum below fits 32
// bits (at most 2^16 x 65535 plus the rounding half), and the widest box taken (33 pixels, see
// kMostFixedPointRatio) rounds its weights to within a tenth of a level.
constexpr int kWeightBits = 16;

// The source span and weights of each output index along one axis.
struct AxisTaps {
  std::vector<int> start;             // first source index read for each output index
  std::vector<std::int32_t> weights;  // `taps` a row (some 0), summing to 2^16
  int taps = 0;                       // source indexes read for each output index
};

AxisTaps axis_taps(int source, int target) {
  AxisTaps axis;
  const double scale = static_cast<double>(source) / target;
  axis.taps = std::min(source, static_cast<int>(std::ceil(scale)) + 1);
  axis.start.resize(static_cast<std::size_t>(target));
  axis.weights.assign(static_cast<std::size_t>(target) * static_cast<std::size_t>(axis.taps), 0);
  for (int d = 0; d < target; ++d) {
    const double from = d * scale, to = std::min<double>(source, (d + 1) * scale);
    const int first = std::min(source - 1, static_cast<int>(from));
    const int last = std::max(first, std::min(source - 1, static_cast<int>(std::ceil(to)) - 1));
    // Every output index reads `taps` source indexes (the kernels' loops have one length): near
    // the end the span starts earlier, the indexes before `first` weighing nothing.
    const int start = std::min(first, source - axis.taps);
    std::int32_t* w = &axis.weights[static_cast<std::size_t>(d) * axis.taps];
    std::int32_t sum = 0;
    int largest = first - start;
    for (int i = first; i <= last && i - start < axis.taps; ++i) {
      const double covered = std::min<double>(i + 1, to) - std::max<double>(i, from);
      w[i - start] =
          static_cast<std::int32_t>(std::lround(covered / (to - from) * (1 << kWeightBits)));
      sum += w[i - start];
      if (w[i - start] > w[largest]) largest = i - start;
    }
    w[largest] += (1 << kWeightBits) - sum;  // the rounding left over, where it weighs least
    axis.start[static_cast<std::size_t>(d)] = start;
  }
  return axis;
}

// One source row averaged along x into `out` (fixed point, `kept` fractional bits); kTaps is the
// axis' tap count where it is small (the loops then unroll), 0 for any other. kPremultiplied
// (8-bit BGRA only) averages colour times alpha and alpha times 255, as resize_image() wants.
template <typename T, int kChannels, int kTaps, bool kPremultiplied>
void shrink_row(const T* in, const AxisTaps& x, int kept, std::uint32_t* out) {
  const int width = static_cast<int>(x.start.size());
  const int taps = kTaps > 0 ? kTaps : x.taps;
  const int shift = kWeightBits - kept;
  const std::uint32_t half = 1u << (shift - 1);
  for (int d = 0; d < width; ++d) {
    const T* from =
        in + static_cast<std::ptrdiff_t>(x.start[static_cast<std::size_t>(d)]) * kChannels;
    const std::int32_t* w = &x.weights[static_cast<std::size_t>(d) * taps];
    std::uint32_t sum[kChannels] = {};
    for (int k = 0; k < taps; ++k) {
      const std::uint32_t weight = static_cast<std::uint32_t>(w[k]);
      const T* pixel = from + k * kChannels;
      if constexpr (kPremultiplied) {
        const std::uint32_t alpha = pixel[3];
        for (int c = 0; c < 3; ++c) sum[c] += weight * (pixel[c] * alpha);
        sum[3] += weight * (alpha * 255);
      } else {
        for (int c = 0; c < kChannels; ++c) sum[c] += weight * pixel[c];
      }
    }
    for (int c = 0; c < kChannels; ++c) out[d * kChannels + c] = (sum[c] + half) >> shift;
  }
}

template <typename T, int kChannels, bool kPremultiplied>
void shrink_row(const T* in, const AxisTaps& x, int kept, std::uint32_t* out) {
  switch (x.taps) {
    case 2: return shrink_row<T, kChannels, 2, kPremultiplied>(in, x, kept, out);
    case 3: return shrink_row<T, kChannels, 3, kPremultiplied>(in, x, kept, out);
    case 4: return shrink_row<T, kChannels, 4, kPremultiplied>(in, x, kept, out);
    case 5: return shrink_row<T, kChannels, 5, kPremultiplied>(in, x, kept, out);
    default: return shrink_row<T, kChannels, 0, kPremultiplied>(in, x, kept, out);
  }
}

template <typename T, bool kPremultiplied>
void shrink_row(const T* in, int channels, const AxisTaps& x, int kept, std::uint32_t* out) {
  if constexpr (kPremultiplied) {
    shrink_row<T, 4, true>(in, x, kept, out);
  } else {
    switch (channels) {
      case 1: return shrink_row<T, 1, false>(in, x, kept, out);
      case 2: return shrink_row<T, 2, false>(in, x, kept, out);
      case 3: return shrink_row<T, 3, false>(in, x, kept, out);
      default: return shrink_row<T, 4, false>(in, x, kept, out);
    }
  }
}

void add_weighted(std::uint32_t* sums, const std::uint32_t* values, std::uint32_t weight,
                  std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) sums[i] += weight * values[i];
}

template <typename T>
void narrow(const std::uint32_t* sums, int shift, std::size_t n, T* out) {
  const std::uint32_t half = 1u << (shift - 1);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>((sums[i] + half) >> shift);
}

// `source` (8- or 16-bit) shrunk by area to `size` as `Out`: each source row is averaged along x
// once, kept in a ring of as many rows as one output row spans, and the output rows are weighed
// sums of those. 8-bit rows keep 8 fractional bits between the passes; 16-bit and premultiplied
// ones none (their sums would not fit 32 bits), a rounding of at most 1/65535.
template <typename T, typename Out, bool kPremultiplied>
void area_shrink(const cv::Mat& source, cv::Mat& result, cv::Size size, int type) {
  const int channels = source.channels();
  const AxisTaps x = axis_taps(source.cols, size.width);
  const AxisTaps y = axis_taps(source.rows, size.height);
  const int kept = sizeof(T) == 1 && !kPremultiplied ? 8 : 0;
  const std::size_t row_values = static_cast<std::size_t>(size.width) * channels;
  const int ring = y.taps + 1;
  std::vector<std::uint32_t> rows(row_values * static_cast<std::size_t>(ring));
  std::vector<int> held(static_cast<std::size_t>(ring), -1);  // the source row in each slot
  std::vector<std::uint32_t> sums(row_values);
  cv::Mat out(size, type);
  const int shift = kWeightBits + kept;
  for (int d = 0; d < size.height; ++d) {
    const int first = y.start[static_cast<std::size_t>(d)];
    const std::int32_t* w = &y.weights[static_cast<std::size_t>(d) * y.taps];
    std::fill(sums.begin(), sums.end(), 0u);
    for (int k = 0; k < y.taps; ++k) {
      if (w[k] == 0) continue;
      const int row = first + k;
      const std::size_t slot = static_cast<std::size_t>(row % ring);
      std::uint32_t* values = &rows[slot * row_values];
      if (held[slot] != row) {
        shrink_row<T, kPremultiplied>(source.ptr<T>(row), channels, x, kept, values);
        held[slot] = row;
      }
      add_weighted(sums.data(), values, static_cast<std::uint32_t>(w[k]), row_values);
    }
    narrow(sums.data(), shift, row_values, out.ptr<Out>(d));
  }
  result = out;
}

// area_shrink() compiled a second time for AVX2, every loop it calls inlined into it (`flatten`):
// SSE2, the baseline the build targets, has no 32-bit multiply to vectorise the row sums with,
// and they are most of the time. The processor's features pick the copy, once.
template <typename T, typename Out, bool kPremultiplied>
__attribute__((target("avx2"), flatten)) void area_shrink_avx2(const cv::Mat& source,
                                                               cv::Mat& result, cv::Size size,
                                                               int type) {
  area_shrink<T, Out, kPremultiplied>(source, result, size, type);
}

template <typename T, typename Out, bool kPremultiplied>
void shrink_by_area(const cv::Mat& source, cv::Mat& result, cv::Size size, int type) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) {
    area_shrink_avx2<T, Out, kPremultiplied>(source, result, size, type);
  } else {
    area_shrink<T, Out, kPremultiplied>(source, result, size, type);
  }
}

// Up to this ratio per axis a box's weights round to within 1/2000 of themselves; beyond it (a
// panorama made an icon without shrink on load) OpenCV's floating-point path is kept.
constexpr int kMostFixedPointRatio = 32;

bool fixed_point_ratios(const cv::Mat& source, cv::Size size) {
  return source.cols <= size.width * kMostFixedPointRatio &&
         source.rows <= size.height * kMostFixedPointRatio;
}

}  // namespace

void area_resize(const cv::Mat& source, cv::Mat& result, cv::Size size) {
  const bool whole_ratios = source.cols % size.width == 0 && source.rows % size.height == 0;
  if (whole_ratios || size.width > source.cols || size.height > source.rows ||
      !fixed_point_ratios(source, size) || (source.depth() != CV_8U && source.depth() != CV_16U)) {
    cv::resize(source, result, size, 0, 0, cv::INTER_AREA);  // OpenCV's fast whole-ratio path
    return;
  }
  if (source.depth() == CV_8U) {
    shrink_by_area<std::uint8_t, std::uint8_t, false>(source, result, size, source.type());
  } else {
    shrink_by_area<std::uint16_t, std::uint16_t, false>(source, result, size, source.type());
  }
}

int lowest_alpha(const cv::Mat& image) {
  if (image.channels() != 4) return 255;
  cv::Mat alpha;
  cv::extractChannel(image, alpha, 3);
  double lowest = 255;
  cv::minMaxLoc(alpha, &lowest);
  return static_cast<int>(lowest);
}

bool has_translucency(const cv::Mat& image) {
  return lowest_alpha(image) < 255;
}

void resize_image(const cv::Mat& source, cv::Mat& result, cv::Size size) {
  const bool shrinking = size.width <= source.cols && size.height <= source.rows;
  if (!has_translucency(source)) {
    if (shrinking) {
      area_resize(source, result, size);
    } else {
      cv::resize(source, result, size, 0, 0, cv::INTER_CUBIC);
    }
    return;
  }
  // Premultiplied in 16 bits, exactly: colour * alpha and alpha * 255 both fit (at most 65025),
  // so the average keeps the colours of nearly transparent pixels. A shrink premultiplies as it
  // reads the rows (no premultiplied copy of the whole source); an enlargement, or a shrink past
  // the fixed-point ratios, makes the copy for OpenCV. Only the small result is divided back.
  cv::Mat resized;
  if (shrinking && fixed_point_ratios(source, size)) {
    shrink_by_area<std::uint8_t, std::uint16_t, true>(source, resized, size, CV_16UC4);
  } else {
    cv::Mat premultiplied(source.size(), CV_16UC4);
    for (int y = 0; y < source.rows; ++y) {
      const std::uint8_t* in = source.ptr<std::uint8_t>(y);
      std::uint16_t* out = premultiplied.ptr<std::uint16_t>(y);
      for (int x = 0; x < 4 * source.cols; x += 4) {
        const unsigned alpha = in[x + 3];
        out[x] = static_cast<std::uint16_t>(in[x] * alpha);
        out[x + 1] = static_cast<std::uint16_t>(in[x + 1] * alpha);
        out[x + 2] = static_cast<std::uint16_t>(in[x + 2] * alpha);
        out[x + 3] = static_cast<std::uint16_t>(alpha * 255);
      }
    }
    cv::resize(premultiplied, resized, size, 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  }
  result.create(size, CV_8UC4);
  for (int y = 0; y < size.height; ++y) {
    const std::uint16_t* in = resized.ptr<std::uint16_t>(y);
    std::uint8_t* out = result.ptr<std::uint8_t>(y);
    for (int x = 0; x < 4 * size.width; x += 4) {
      const unsigned alpha = in[x + 3];  // alpha * 255
      for (int c = 0; c < 3; ++c) {
        // colour = C / A * 255, rounded; 0 where alpha is 0; capped where a cubic overshoots.
        out[x + c] = alpha == 0 ? 0
                                : static_cast<std::uint8_t>(std::min<unsigned>(
                                      255, (in[x + c] * 255u + alpha / 2) / alpha));
      }
      out[x + 3] = static_cast<std::uint8_t>((alpha + 127) / 255);
    }
  }
}

}  // namespace thimble::transform
