#include "transform/spec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <tuple>
#include <utility>

namespace thimble::transform {
namespace {

Status bad(std::string message) {
  return {Code::kBadRequest, std::move(message)};
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A decimal number of at most 5 digits (<= 65535); nullopt otherwise.
std::optional<int> small_number(std::string_view s) {
  if (!all_digits(s) || s.size() > 5) return std::nullopt;
  int value = 0;
  std::from_chars(s.data(), s.data() + s.size(), value);
  if (value > kMaxUrlDimension) return std::nullopt;
  return value;
}

// `[-](digits|orig)?`
bool parse_length(std::string_view s, Length& length, bool& flip) {
  flip = !s.empty() && s.front() == '-';
  if (flip) s.remove_prefix(1);
  if (s.empty()) {
    length = {};
  } else if (s == "orig") {
    length = {Length::Kind::kOrig, 0};
  } else if (auto n = small_number(s)) {
    length = *n == 0 ? Length{} : Length{Length::Kind::kPixels, *n};
  } else {
    return false;
  }
  return true;
}

// `[-]W x [-]H`, each side optional.
bool parse_size(std::string_view seg, ThumbnailSpec& spec) {
  std::size_t x = seg.find('x');
  if (x == std::string_view::npos || seg.find('x', x + 1) != std::string_view::npos) return false;
  ThumbnailSpec out = spec;
  if (!parse_length(seg.substr(0, x), out.width, out.flip_horizontal)) return false;
  if (!parse_length(seg.substr(x + 1), out.height, out.flip_vertical)) return false;
  spec = out;
  return true;
}

// `AxB:CxD`
bool parse_crop(std::string_view seg, std::optional<CropBox>& crop) {
  std::size_t colon = seg.find(':');
  if (colon == std::string_view::npos) return false;
  std::array<int, 4> v{};
  std::string_view halves[2] = {seg.substr(0, colon), seg.substr(colon + 1)};
  for (int h = 0; h < 2; ++h) {
    std::size_t x = halves[h].find('x');
    if (x == std::string_view::npos) return false;
    auto a = small_number(halves[h].substr(0, x));
    auto b = small_number(halves[h].substr(x + 1));
    if (!a || !b) return false;
    v[2 * h] = *a;
    v[2 * h + 1] = *b;
  }
  CropBox box{v[0], v[1], v[2], v[3]};
  crop = box == CropBox{} ? std::nullopt : std::optional<CropBox>(box);
  return true;
}

// `trim[:top-left|:bottom-right][:tolerance]`; false when `seg` is not a trim segment at all.
// A tolerance that is not a number from 0 to 442 makes `error` non-empty.
bool parse_trim(std::string_view seg, std::optional<Trim>& trim, std::string& error) {
  if (seg != "trim" && !seg.starts_with("trim:")) return false;
  Trim t;
  seg.remove_prefix(4);
  if (seg.starts_with(":top-left")) {
    seg.remove_prefix(9);
  } else if (seg.starts_with(":bottom-right")) {
    t.corner = Trim::Corner::kBottomRight;
    seg.remove_prefix(13);
  }
  if (!seg.empty()) {
    auto tolerance = seg.front() == ':' ? small_number(seg.substr(1)) : std::nullopt;
    if (!tolerance || *tolerance > 442) {
      error = "trim: the tolerance must be a whole number from 0 to 442";
      return true;
    }
    t.tolerance = *tolerance;
  }
  trim = t;
  return true;
}

bool parse_fit(std::string_view seg, ThumbnailSpec& spec) {
  bool adaptive = seg.starts_with("adaptive-");
  if (adaptive) seg.remove_prefix(9);
  bool full = seg.starts_with("full-");
  if (full) seg.remove_prefix(5);
  if (seg != "fit-in") return false;
  spec.adaptive = adaptive;
  spec.fit = full ? FitMode::kFullFitIn : FitMode::kFitIn;
  return true;
}

// Settings filters: they change what is made (quality, format, lifetimes, the size rules, focal
// points), not pixels. One entry each; pixel filters are in the registry of transform/filters/.
struct Setting {
  std::string_view name;
  Status (*apply)(std::string_view name, std::string_view args, ThumbnailSpec& spec);
};

std::string call_text(std::string_view name, std::string_view args) {
  return std::string(name) + "(" + std::string(args) + ")";
}

Status twice(std::string_view name) {
  return bad(std::string(name) + "() is given twice");
}

Status no_arguments(std::string_view name, std::string_view args) {
  if (!split_arguments(args).empty()) return bad(call_text(name, args) + ": takes no arguments");
  return Status::Ok();
}

// quality(N), or quality(auto): Thimble's perceptual choice (auto_quality.h), an extension.
Status set_quality(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  std::optional<int> q;
  if (args != "auto") {
    q = small_number(args);
    if (!q || *q > 100) {
      return bad(call_text(name, args) + ": quality must be a whole number from 0 to 100, or auto");
    }
  }
  if (spec.quality || spec.auto_quality) return twice(name);
  if (q) {
    spec.quality = *q;
  } else {
    spec.auto_quality = true;
  }
  return Status::Ok();
}

Status set_format(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  if (spec.format) return twice(name);
  if (args == "jpeg" || args == "jpg") {
    spec.format = ImageFormat::kJpeg;
  } else if (args == "png") {
    spec.format = ImageFormat::kPng;
  } else if (args == "webp") {
    spec.format = ImageFormat::kWebp;
  } else if (args == "avif") {
    spec.format = ImageFormat::kAvif;
  } else if (args == "gif") {
    spec.format = ImageFormat::kGif;
  } else if (args == "heic" || args == "heif") {
    return bad(call_text(name, args) + ": HEIC output is not supported (browsers do not show it)");
  } else {
    return bad(call_text(name, args) + ": output format must be jpeg, png, webp, avif or gif");
  }
  return Status::Ok();
}

// A setting with one whole-number argument of at least `minimum`.
template <std::optional<int> ThumbnailSpec::*field, int minimum>
Status set_number(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  auto value = split_arguments(args).size() == 1 ? integer_argument(args) : std::nullopt;
  if (!value || *value < minimum) {
    return bad(call_text(name, args) + ": expected " +
               (minimum > 0 ? "a positive whole number of bytes" : "a whole number of seconds"));
  }
  if (spec.*field) return twice(name);
  spec.*field = *value;
  return Status::Ok();
}

// A flag without arguments, given at most once.
template <bool ThumbnailSpec::*flag>
Status set_flag(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  if (Status none = no_arguments(name, args); !none.ok()) return none;
  if (spec.*flag) return twice(name);
  spec.*flag = true;
  return Status::Ok();
}

Status set_extract_focal(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  if (Status none = no_arguments(name, args); !none.ok()) return none;
  spec.extract_focal = true;
  return Status::Ok();
}

Status add_focal(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  std::optional<CropBox> box;
  if (!parse_crop(unquoted(args), box) || !box || box->right <= box->left ||
      box->bottom <= box->top) {
    return bad(call_text(name, args) +
               ": expected a box LEFTxTOP:RIGHTxBOTTOM with right > left, bottom > top");
  }
  if (spec.focal_boxes.size() >= 32) return bad("focal(): at most 32 boxes");
  spec.focal_boxes.push_back(*box);
  return Status::Ok();
}

// Thimble never copies metadata (EXIF, ICC, XMP) into thumbnails: strip_icc/strip_exif always
// hold.
Status already_so(std::string_view name, std::string_view args, ThumbnailSpec&) {
  return no_arguments(name, args);
}

constexpr Setting kSettings[] = {
    {"quality", set_quality},
    {"format", set_format},
    {"max_age", set_number<&ThumbnailSpec::max_age, 0>},
    {"max_bytes", set_number<&ThumbnailSpec::max_bytes, 1>},
    {"no_upscale", set_flag<&ThumbnailSpec::no_upscale>},
    {"upscale", set_flag<&ThumbnailSpec::upscale>},
    {"stretch", set_flag<&ThumbnailSpec::stretch>},
    {"extract_focal", set_extract_focal},
    {"focal", add_focal},
    {"strip_icc", already_so},
    {"strip_exif", already_so},
};

// Thumbor's built-in filters that Thimble does not implement yet: a clear 400, never ignored.
constexpr std::array<std::string_view, 1> kNotYetSupported = {"frame"};

Status apply_filter(std::string_view name, std::string_view args, ThumbnailSpec& spec) {
  for (const Setting& setting : kSettings) {
    if (setting.name == name) return setting.apply(name, args, spec);
  }
  if (auto pixel = parse_pixel_filter(name, args)) {
    if (!pixel->ok()) return pixel->status();
    if (pixel->value().effect->image_key() &&
        std::count_if(spec.filters.begin(), spec.filters.end(), [](const PixelFilter& f) {
          return f.effect->image_key() != nullptr;
        }) >= kMaxWatermarks) {
      return bad("watermark(): at most " + std::to_string(kMaxWatermarks) + " per URL");
    }
    spec.filters.push_back(std::move(pixel->value()));
    return Status::Ok();
  }
  for (std::string_view known : kNotYetSupported) {
    if (name == known) return bad("filter '" + std::string(name) + "' is not supported");
  }
  return bad("unknown filter '" + std::string(name) + "'");
}

// `name(args):name(args)...`; arguments may contain nested parentheses and colons.
Status parse_filters(std::string_view list, ThumbnailSpec& spec) {
  std::size_t i = 0;
  while (i < list.size()) {
    std::size_t open = list.find('(', i);
    if (open == std::string_view::npos || open == i) {
      return bad("filters: expected name(arguments) at '" + std::string(list.substr(i)) + "'");
    }
    std::string_view name = list.substr(i, open - i);
    for (char c : name) {
      if (!((c >= 'a' && c <= 'z') || c == '_')) {
        return bad("filters: '" + std::string(name) + "' is not a filter name");
      }
    }
    int depth = 0;
    std::size_t close = open;
    for (; close < list.size(); ++close) {
      if (list[close] == '(') ++depth;
      if (list[close] == ')' && --depth == 0) break;
    }
    if (close == list.size()) return bad("filters: unbalanced parentheses in " + std::string(name));
    if (Status s = apply_filter(name, list.substr(open + 1, close - open - 1), spec); !s.ok()) {
      return s;
    }
    i = close + 1;
    if (i < list.size()) {
      if (list[i] != ':') return bad("filters: expected ':' between filters");
      ++i;  // the list ends with ')', so a ':' is always followed by another filter
    }
  }
  return Status::Ok();
}

// Words that only mean something as option segments: an image key starting with one of them is
// almost surely a URL with segments out of order, which Thumbor would silently misread.
bool looks_like_misplaced_option(std::string_view first) {
  if (first.starts_with("filters:") || first.starts_with("trim")) return true;
  for (std::string_view word : {"fit-in", "full-fit-in", "adaptive-fit-in", "adaptive-full-fit-in",
                                "meta", "debug", "smart", "unsafe"}) {
    if (first == word) return true;
  }
  return false;
}

// `[-](digits|orig)?x[-](digits|orig)?` regardless of magnitude.
bool looks_like_size(std::string_view seg) {
  std::size_t x = seg.find('x');
  if (x == std::string_view::npos) return false;
  auto side = [](std::string_view s) {
    if (!s.empty() && s.front() == '-') s.remove_prefix(1);
    return s.empty() || s == "orig" || all_digits(s);
  };
  return side(seg.substr(0, x)) && side(seg.substr(x + 1)) && seg != "x";
}

}  // namespace

std::string Trim::text() const {
  std::string out = "trim";
  if (corner == Corner::kBottomRight) out += ":bottom-right";
  if (tolerance > 0) out += ":" + std::to_string(tolerance);
  return out;
}

namespace {

// parse_spec() itself; `resolve_focal` = false for the nested URLs extract_focal() reads, which
// resolve_extract_focal() walks itself (resolving each again would cost 10^depth parses).
Result<ThumbnailSpec> parse(std::string_view s, bool resolve_focal);

// extract_focal(): when the image is itself a Thumbor URL (after an optional host) with a manual
// crop, that crop becomes a focal point and its image the original; up to 10 levels deep.
void resolve_extract_focal(ThumbnailSpec& spec) {
  std::string url = spec.image;
  for (int level = 0; level < 10; ++level) {
    const std::size_t slash = url.find('/');
    if (slash == std::string::npos) return;
    std::string_view inner = std::string_view(url).substr(slash + 1);  // drop the host part
    const std::size_t next = inner.find('/');
    if (next == std::string_view::npos) return;
    std::string_view signature = inner.substr(0, next);
    if (signature != "unsafe" && signature.size() < 28) return;
    Result<ThumbnailSpec> nested = parse(inner.substr(next + 1), false);
    if (!nested.ok()) return;
    if (nested->crop) {
      const CropBox c = *nested->crop;
      spec.focal_boxes.push_back(c);
      spec.image = nested->image;
      return;
    }
    url = nested->image;
  }
}

void append_length(std::string& out, const Length& length, bool flip) {
  if (flip) out += '-';
  switch (length.kind) {
    case Length::Kind::kAuto: out += '0'; break;
    case Length::Kind::kOrig: out += "orig"; break;
    case Length::Kind::kPixels: out += std::to_string(length.pixels); break;
  }
}

}  // namespace

Result<ThumbnailSpec> parse_spec(std::string_view s) {
  return parse(s, true);
}

namespace {

Result<ThumbnailSpec> parse(std::string_view s, bool resolve_focal) {
  ThumbnailSpec spec;
  // The segments, in the only order Thumbor accepts them; each is matched at most once.
  enum Stage { kDebug, kMeta, kTrim, kCrop, kFit, kSize, kHAlign, kVAlign, kSmart, kStages };
  std::string trim_error;
  auto matches = [&](int stage, std::string_view seg) -> bool {
    switch (stage) {
      case kDebug: return seg == "debug" && (spec.debug = true);
      case kMeta: return seg == "meta" && (spec.meta = true);
      case kTrim: return parse_trim(seg, spec.trim, trim_error);
      case kCrop: return parse_crop(seg, spec.crop);
      case kFit: return parse_fit(seg, spec);
      case kSize: return parse_size(seg, spec);
      case kHAlign:
        if (seg == "left") return spec.halign = HAlign::kLeft, true;
        if (seg == "center") return spec.halign = HAlign::kCenter, true;
        if (seg == "right") return spec.halign = HAlign::kRight, true;
        return false;
      case kVAlign:
        if (seg == "top") return spec.valign = VAlign::kTop, true;
        if (seg == "middle") return spec.valign = VAlign::kMiddle, true;
        if (seg == "bottom") return spec.valign = VAlign::kBottom, true;
        return false;
      case kSmart: return seg == "smart" && (spec.smart = true);
      default: return false;
    }
  };

  std::size_t pos = 0;
  int next_stage = 0;
  while (true) {
    std::size_t slash = s.find('/', pos);
    std::string_view seg = s.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    if (slash == std::string_view::npos && !seg.starts_with("filters:")) {
      break;  // the last segment is always the image
    }
    if (seg.starts_with("filters:")) {
      // The filters segment ends at the first `)/`: arguments may contain slashes.
      std::size_t end = s.find(")/", pos);
      if (end == std::string_view::npos) {
        return bad("filters: must end with ')' followed by '/' and the image");
      }
      if (Status st = parse_filters(s.substr(pos + 8, end + 1 - (pos + 8)), spec); !st.ok()) {
        return st;
      }
      pos = end + 2;
      break;
    }
    int stage = next_stage;
    while (stage < kStages && !matches(stage, seg)) ++stage;
    if (stage == kStages) break;
    if (!trim_error.empty()) return bad(trim_error);
    next_stage = stage + 1;
    pos = slash + 1;
  }

  spec.image = std::string(s.substr(pos));
  if (spec.image.empty()) return bad("the URL names no image");
  std::string_view first = s.substr(pos, s.find('/', pos) - pos);
  if (next_stage <= kSize && first.size() < s.size() - pos && looks_like_size(first)) {
    std::string message(first);
    message.append(": width and height must be at most ").append(std::to_string(kMaxUrlDimension));
    return bad(std::move(message));
  }
  if (looks_like_misplaced_option(first)) {
    std::string message(first);
    message.append(" is out of order: see the URL format");
    return bad(std::move(message));
  }
  if (spec.extract_focal && resolve_focal) resolve_extract_focal(spec);
  if (spec.crop && (spec.crop->right <= spec.crop->left || spec.crop->bottom <= spec.crop->top)) {
    return bad("crop: right and bottom must be greater than left and top");
  }
  return spec;
}

}  // namespace

std::string ThumbnailSpec::canonical() const {
  return canonical_options(false);
}

std::string ThumbnailSpec::canonical_options(bool spell_defaults) const {
  std::string out;
  if (debug) out += "debug/";
  if (meta) out += "meta/";
  if (trim) out += trim->text() + "/";
  if (crop) {
    out += std::to_string(crop->left) + "x" + std::to_string(crop->top) + ":" +
           std::to_string(crop->right) + "x" + std::to_string(crop->bottom) + "/";
  }
  if (fit != FitMode::kCrop) {
    if (adaptive) out += "adaptive-";
    if (fit == FitMode::kFullFitIn) out += "full-";
    out += "fit-in/";
  }
  bool has_size = width.kind != Length::Kind::kAuto || height.kind != Length::Kind::kAuto;
  if (has_size || flip_horizontal || flip_vertical || spell_defaults) {
    append_length(out, width, flip_horizontal);
    out += 'x';
    append_length(out, height, flip_vertical);
    out += '/';
  }
  if (halign == HAlign::kLeft) out += "left/";
  if (halign == HAlign::kRight) out += "right/";
  if (halign == HAlign::kCenter && spell_defaults) out += "center/";
  if (valign == VAlign::kTop) out += "top/";
  if (valign == VAlign::kBottom) out += "bottom/";
  if (valign == VAlign::kMiddle && spell_defaults) out += "middle/";
  if (smart) out += "smart/";
  // Settings in a fixed order (their order does not matter), then pixel filters as given.
  std::string calls;
  auto add = [&calls](const std::string& f) { calls += (calls.empty() ? "" : ":") + f; };
  if (format) add("format(" + std::string(format_name(*format)) + ")");
  if (quality) add("quality(" + std::to_string(*quality) + ")");
  if (auto_quality) add("quality(auto)");
  if (max_age) add("max_age(" + std::to_string(*max_age) + ")");
  if (max_bytes) add("max_bytes(" + std::to_string(*max_bytes) + ")");
  if (no_upscale) add("no_upscale()");
  if (upscale) add("upscale()");
  if (stretch) add("stretch()");
  // extract_focal() is resolved while parsing: its box is among the focal boxes below.
  for (const CropBox& b : focal_boxes) {
    add("focal(" + std::to_string(b.left) + "x" + std::to_string(b.top) + ":" +
        std::to_string(b.right) + "x" + std::to_string(b.bottom) + ")");
  }
  for (const auto& filter : filters) add(filter.canonical);
  if (!calls.empty()) out += "filters:" + calls + "/";
  if (!out.empty()) out.pop_back();  // no trailing slash
  return out;
}

std::string ThumbnailSpec::path() const {
  const std::string options = canonical_options(false);
  const std::string joined = options.empty() ? image : options + "/" + image;
  Result<ThumbnailSpec> reread = parse_spec(joined);
  if (reread.ok() && reread->image == image) return joined;
  // The image's first segment was read as an option the canonical form leaves out. Spelled out,
  // the size and alignment stages are taken; later option words are refused as an image start.
  return canonical_options(true) + "/" + image;
}

Status check_limits(const ThumbnailSpec& spec, const SpecLimits& limits) {
  if (std::cmp_greater(spec.filters.size(), limits.max_filters)) {
    return over_limit("the number of filters", limits.max_filters);
  }
  if (spec.max_bytes && *spec.max_bytes < limits.min_max_bytes) {
    return bad("max_bytes(" + std::to_string(*spec.max_bytes) + "): at least " +
               std::to_string(limits.min_max_bytes) + " bytes on this server");
  }
  return check_filter_limits(spec.filters, limits);
}

}  // namespace thimble::transform
