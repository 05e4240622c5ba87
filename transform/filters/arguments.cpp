#include "transform/filters/arguments.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace thimble::transform {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::string_view> split_arguments(std::string_view args) {
  // Commas separate arguments, except inside a 'single-quoted' string (Thumbor's String type).
  std::vector<std::string_view> out;
  if (trim(args).empty()) return out;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= args.size(); ++i) {
    if (i < args.size() && args[i] == '\'') quoted = !quoted;
    if (i == args.size() || (args[i] == ',' && !quoted)) {
      out.push_back(trim(args.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

std::optional<int> integer_argument(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> decimal_argument(std::string_view text) {
  if (text.empty() || text.size() > 24) return std::nullopt;
  std::string_view digits = text.front() == '-' ? text.substr(1) : text;
  if (digits.empty() || digits == "." ||
      digits.find_first_not_of("0123456789.") != std::string_view::npos ||
      std::count(digits.begin(), digits.end(), '.') > 1) {
    return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<bool> boolean_argument(std::string_view text) {
  if (text == "true" || text == "True" || text == "1") return true;
  if (text == "false" || text == "False" || text == "0") return false;
  return std::nullopt;
}

std::optional<std::vector<int>> integer_arguments(const std::vector<std::string_view>& args,
                                                  std::size_t count, int lo, int hi) {
  if (args.size() != count) return std::nullopt;
  std::vector<int> out;
  for (auto a : args) {
    auto v = integer_argument(a);
    if (!v || *v < lo || *v > hi) return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

std::optional<std::array<std::uint8_t, 3>> hex_colour(std::string_view text) {
  if (!text.empty() && text.front() == '#') text.remove_prefix(1);
  if (text.size() != 6) return std::nullopt;
  std::array<std::uint8_t, 3> rgb{};
  for (int i = 0; i < 3; ++i) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, value, 16);
    if (ec != std::errc() || end != text.data() + 2 * i + 2) return std::nullopt;
    rgb[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value);
  }
  return rgb;
}

std::string_view unquoted(std::string_view text) {
  if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
    text = text.substr(1, text.size() - 2);
  }
  return text;
}

std::string decimal_text(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

std::string hex_text(const std::array<std::uint8_t, 3>& rgb) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return hex;
}

}  // namespace thimble::transform
