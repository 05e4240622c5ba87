#include "conf/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

namespace thimble::conf {
namespace {

// One configuration key: its YAML path and how to store a node into the bound member.
// `assign` returns an empty string on success, else the reason the value is refused.
struct Field {
  std::string path;
  bool is_list = false;
  std::function<std::string(const YAML::Node&)> assign;
};

std::optional<long long> parse_integer(std::string_view text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::string range_reason(long long lo, long long hi, std::string_view got) {
  std::ostringstream out;
  out << "must be between " << lo << " and " << hi << ", got " << got;
  return out.str();
}

template <class Int>
Field integer(std::string path, Int& target, long long lo, long long hi) {
  return {std::move(path), false, [&target, lo, hi](const YAML::Node& node) -> std::string {
            if (!node.IsScalar()) return "expected a whole number";
            auto value = parse_integer(node.Scalar());
            if (!value) return "expected a whole number, got '" + node.Scalar() + "'";
            if (*value < lo || *value > hi) return range_reason(lo, hi, node.Scalar());
            target = static_cast<Int>(*value);
            return {};
          }};
}

// A byte count: a whole number with an optional binary suffix (KiB, MiB, GiB).
Field bytes(std::string path, std::uint64_t& target, std::uint64_t lo, std::uint64_t hi) {
  return {
      std::move(path), false, [&target, lo, hi](const YAML::Node& node) -> std::string {
        const std::string bad = "expected a byte count such as 1048576 or 64MiB";
        if (!node.IsScalar()) return bad;
        std::string text = node.Scalar();
        std::uint64_t scale = 1;
        for (auto [suffix, factor] : {std::pair{"KiB", 1ull << 10}, std::pair{"MiB", 1ull << 20},
                                      std::pair{"GiB", 1ull << 30}}) {
          std::string_view s(suffix);
          if (text.size() > s.size() && text.ends_with(s)) {
            text.resize(text.size() - s.size());
            scale = factor;
          }
        }
        auto value = parse_integer(text);
        if (!value || *value < 0) return bad + ", got '" + node.Scalar() + "'";
        auto v = static_cast<std::uint64_t>(*value);
        if (v > std::numeric_limits<std::uint64_t>::max() / scale || v * scale < lo ||
            v * scale > hi) {
          return range_reason(static_cast<long long>(lo), static_cast<long long>(hi),
                              node.Scalar());
        }
        target = v * scale;
        return {};
      }};
}

// A decimal number such as 0.97, within [lo, hi].
Field decimal(std::string path, double& target, double lo, double hi) {
  return {std::move(path), false, [&target, lo, hi](const YAML::Node& node) -> std::string {
            std::ostringstream expected;
            expected << "expected a number from " << lo << " to " << hi;
            if (!node.IsScalar()) return expected.str();
            const std::string& text = node.Scalar();
            double value = 0;
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, value);
            if (text.empty() || ec != std::errc() || ptr != end || !(value >= lo && value <= hi)) {
              return expected.str() + ", got '" + text + "'";
            }
            target = value;
            return {};
          }};
}

Field boolean(std::string path, bool& target) {
  return {std::move(path), false, [&target](const YAML::Node& node) -> std::string {
            if (node.IsScalar()) {
              const std::string& s = node.Scalar();
              if (s == "true") return target = true, std::string();
              if (s == "false") return target = false, std::string();
            }
            return "expected true or false";
          }};
}

Field text(std::string path, std::string& target, bool allow_empty) {
  return {std::move(path), false, [&target, allow_empty](const YAML::Node& node) -> std::string {
            if (!node.IsScalar()) return "expected a string";
            if (!allow_empty && node.Scalar().empty()) return "must not be empty";
            target = node.Scalar();
            return {};
          }};
}

Field choice(std::string path, std::string& target, std::vector<std::string> options) {
  return {std::move(path), false, [&target, options](const YAML::Node& node) -> std::string {
            if (node.IsScalar()) {
              for (const auto& option : options) {
                if (node.Scalar() == option) return target = option, std::string();
              }
            }
            std::string reason = "expected one of:";
            for (const auto& option : options) reason += " " + option;
            return reason;
          }};
}

Field text_list(std::string path, std::vector<std::string>& target) {
  return {std::move(path), true, [&target](const YAML::Node& node) -> std::string {
            if (!node.IsSequence()) return "expected a list of strings";
            std::vector<std::string> values;
            for (const auto& item : node) {
              if (!item.IsScalar() || item.Scalar().empty()) {
                return "expected a list of non-empty strings";
              }
              values.push_back(item.Scalar());
            }
            target = std::move(values);
            return {};
          }};
}

// A mapping of names to entries (each a `noun`, named once): `name_error` says what is wrong with
// a name ("" when it is fine), `read` fills one entry from its node (returning the reason it
// cannot).
template <class T>
Field named_entries(std::string path, std::map<std::string, T>& target, std::string noun,
                    std::string expected, std::function<std::string(const std::string&)> name_error,
                    std::function<std::string(const std::string&, const YAML::Node&, T&)> read) {
  return {std::move(path), false,
          [&target, noun, expected, name_error, read](const YAML::Node& node) -> std::string {
            if (!node.IsMap()) return "expected a mapping of " + expected;
            std::map<std::string, T> parsed;
            for (const auto& entry : node) {
              const std::string name = entry.first.as<std::string>();
              if (std::string wrong = name_error(name); !wrong.empty()) return wrong;
              if (parsed.count(name)) return noun + " '" + name + "' appears twice";
              T value;
              if (std::string wrong = read(name, entry.second, value); !wrong.empty()) {
                return wrong;
              }
              parsed.emplace(name, std::move(value));
            }
            target = std::move(parsed);
            return {};
          }};
}

// `presets`: a mapping of names to option strings or to {options, public}. Whether the options
// parse is checked where the URL grammar lives (proxy::PresetTable).
Field presets(std::string path, std::map<std::string, Preset>& target) {
  return named_entries<Preset>(
      std::move(path), target, "preset", "preset names to options",
      [](const std::string& name) -> std::string {
        if (is_preset_name(name)) return {};
        return "preset name '" + name + "' must be 1-64 characters of a-z, 0-9, _ and -";
      },
      [](const std::string& name, const YAML::Node& value, Preset& preset) -> std::string {
        if (value.IsScalar()) {
          preset.options = value.Scalar();
        } else if (value.IsMap()) {
          for (const auto& item : value) {
            const std::string key = item.first.as<std::string>();
            if (key == "options" && item.second.IsScalar()) {
              preset.options = item.second.Scalar();
            } else if (key == "public" && item.second.IsScalar() &&
                       (item.second.Scalar() == "true" || item.second.Scalar() == "false")) {
              preset.is_public = item.second.Scalar() == "true";
            } else {
              return "preset '" + name +
                     "': expected options: <string> and public: " + "true|false, got '" + key + "'";
            }
          }
        } else {
          return "preset '" + name + "': expected an option string or {options, public}";
        }
        if (preset.options.empty() || preset.options.front() == '/' ||
            preset.options.back() == '/') {
          return "preset '" + name + "': options must be a non-empty option string " +
                 "without leading or trailing '/'";
        }
        return {};
      });
}

// `source.s3.buckets`: names (URL segments) mapped to a bucket name, or to {bucket, key_prefix,
// region}.
Field s3_buckets(std::string path, std::map<std::string, S3BucketConfig>& target) {
  return named_entries<S3BucketConfig>(
      std::move(path), target, "bucket", "names to buckets",
      [](const std::string& name) -> std::string {
        if (!name.empty() && name.size() <= 63 &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_") ==
                std::string::npos) {
          return {};
        }
        return "bucket name '" + name + "' must be 1-63 characters of a-z, 0-9, '.', '-' and '_'";
      },
      [](const std::string& name, const YAML::Node& value, S3BucketConfig& bucket) -> std::string {
        if (value.IsScalar()) {
          bucket.bucket = value.Scalar();
        } else if (value.IsMap()) {
          for (const auto& item : value) {
            const std::string key = item.first.as<std::string>();
            std::string* member = key == "bucket"       ? &bucket.bucket
                                  : key == "key_prefix" ? &bucket.key_prefix
                                  : key == "region"     ? &bucket.region
                                                        : nullptr;
            if (!member || !item.second.IsScalar()) {
              return "bucket '" + name +
                     "': expected bucket, key_prefix and region strings, got '" + key + "'";
            }
            *member = item.second.Scalar();
          }
        } else if (!value.IsNull()) {
          return "bucket '" + name + "': expected a bucket name or {bucket, key_prefix, region}";
        }
        return {};
      });
}

constexpr long long kMaxInt = std::numeric_limits<int>::max();

// The schema: every key Thimble reads, bound to its member of `c`.
std::vector<Field> schema(Config& c) {
  return {
      text("server.host", c.server.host, false),
      integer("server.port", c.server.port, 1, 65535),
      integer("server.admin_port", c.server.admin_port, 0, 65535),
      integer("server.reactor_threads", c.server.reactor_threads, 1, 64),
      integer("server.workers", c.server.workers, 0, 256),
      integer("server.worker_nice", c.server.worker_nice, 0, 19),
      integer("server.queue_length", c.server.queue_length, 1, 100000),
      integer("server.listen_backlog", c.server.listen_backlog, 1, 65535),
      bytes("server.max_request_bytes", c.server.max_request_bytes, 1024, 1 << 20),
      integer("server.request_timeout_ms", c.server.request_timeout_ms, 100, 600000),
      integer("server.keepalive_timeout_s", c.server.keepalive_timeout_s, 1, 3600),
      integer("server.header_timeout_ms", c.server.header_timeout_ms, 100, 600000),
      integer("server.write_timeout_ms", c.server.write_timeout_ms, 100, 3600000),
      integer("server.drain_timeout_ms", c.server.drain_timeout_ms, 0, 600000),
      boolean("server.access_log", c.server.access_log),
      text_list("security.keys", c.security.keys),
      boolean("security.allow_unsafe", c.security.allow_unsafe),
      boolean("security.only_presets", c.security.only_presets),
      text("security.signature_header", c.security.signature_header, true),
      choice("source.type", c.source.type, {"file", "http", "s3"}),
      text("source.file.root", c.source.file.root, false),
      text("source.http.base_url", c.source.http.base_url, true),
      text_list("source.http.allowed_hosts", c.source.http.allowed_hosts),
      choice("source.http.default_scheme", c.source.http.default_scheme, {"https", "http"}),
      text_list("source.http.allow_private_networks", c.source.http.allow_private_networks),
      integer("source.http.connect_timeout_ms", c.source.http.connect_timeout_ms, 1, 600000),
      integer("source.http.timeout_ms", c.source.http.timeout_ms, 1, 600000),
      integer("source.http.max_redirects", c.source.http.max_redirects, 0, 20),
      integer("source.http.retries", c.source.http.retries, 0, 10),
      text("source.http.user_agent", c.source.http.user_agent, false),
      text("source.s3.endpoint", c.source.s3.endpoint, true),
      text("source.s3.region", c.source.s3.region, false),
      choice("source.s3.addressing", c.source.s3.addressing, {"virtual", "path"}),
      text("source.s3.access_key_id", c.source.s3.access_key_id, true),
      text("source.s3.secret_access_key", c.source.s3.secret_access_key, true),
      text("source.s3.session_token", c.source.s3.session_token, true),
      text("source.s3.bucket", c.source.s3.bucket, true),
      text("source.s3.key_prefix", c.source.s3.key_prefix, true),
      text_list("source.s3.allowed_buckets", c.source.s3.allowed_buckets),
      s3_buckets("source.s3.buckets", c.source.s3.buckets),
      text_list("source.s3.allowed_key_prefixes", c.source.s3.allowed_key_prefixes),
      choice("source.s3.access_denied_as", c.source.s3.access_denied_as, {"404", "403"}),
      integer("source.s3.connect_timeout_ms", c.source.s3.connect_timeout_ms, 1, 600000),
      integer("source.s3.timeout_ms", c.source.s3.timeout_ms, 1, 600000),
      integer("source.s3.retries", c.source.s3.retries, 0, 10),
      bytes("limits.max_source_bytes", c.limits.max_source_bytes, 1, 1ull << 32),
      bytes("limits.max_source_pixels", c.limits.max_source_pixels, 1, 1ull << 30),
      integer("limits.max_source_dimension", c.limits.max_source_dimension, 1, 65535),
      bytes("limits.max_decoder_memory_bytes", c.limits.max_decoder_memory_bytes, 1 << 20,
            1ull << 36),
      integer("limits.max_jpeg_scans", c.limits.max_jpeg_scans, 1, 10000),
      integer("limits.max_output_dimension", c.limits.max_output_dimension, 1, 16384),
      integer("limits.max_frames", c.limits.max_frames, 1, 100000),
      bytes("limits.max_animation_pixels", c.limits.max_animation_pixels, 1, 1ull << 36),
      integer("limits.max_url_bytes", c.limits.max_url_bytes, 64, 1 << 20),
      integer("limits.max_filters", c.limits.max_filters, 0, 1000),
      integer("limits.max_blur_radius", c.limits.max_blur_radius, 0, 150),
      integer("limits.max_convolution_size", c.limits.max_convolution_size, 1, 15),
      integer("limits.max_round_corner_radius", c.limits.max_round_corner_radius, 0, 10000),
      integer("limits.max_watermarks", c.limits.max_watermarks, 0, 16),
      integer("limits.min_max_bytes", c.limits.min_max_bytes, 1, 1 << 30),
      integer("output.jpeg_quality", c.output.jpeg_quality, 1, 100),
      boolean("output.jpeg_progressive", c.output.jpeg_progressive),
      integer("output.webp_quality", c.output.webp_quality, 1, 100),
      integer("output.png_compression", c.output.png_compression, 0, 9),
      boolean("output.auto_webp", c.output.auto_webp),
      integer("output.avif_quality", c.output.avif_quality, 1, 100),
      integer("output.avif_speed", c.output.avif_speed, 0, 10),
      boolean("output.auto_avif", c.output.auto_avif),
      choice("output.quality", c.output.quality, {"fixed", "auto"}),
      decimal("output.auto_quality_ssim", c.output.auto_quality_ssim, 0.5, 0.9999),
      integer("output.auto_quality_min", c.output.auto_quality_min, 1, 100),
      integer("output.auto_quality_max", c.output.auto_quality_max, 1, 100),
      boolean("output.respect_orientation", c.output.respect_orientation),
      choice("output.color_management", c.output.color_management, {"srgb", "ignore"}),
      choice("output.chroma_subsampling", c.output.chroma_subsampling, {"auto", "420", "444"}),
      integer("cache_control.max_age", c.cache_control.max_age, 0, kMaxInt),
      integer("cache_control.s_maxage", c.cache_control.s_maxage, -1, kMaxInt),
      integer("cache_control.stale_while_revalidate", c.cache_control.stale_while_revalidate, -1,
              kMaxInt),
      integer("cache_control.error_max_age", c.cache_control.error_max_age, 0, kMaxInt),
      bytes("result_cache.memory_bytes", c.result_cache.memory_bytes, 0, 1ull << 40),
      integer("result_cache.shards", c.result_cache.shards, 1, 256),
      integer("result_cache.not_found_ttl_s", c.result_cache.not_found_ttl_s, 0, 86400),
      bytes("original_cache.memory_bytes", c.original_cache.memory_bytes, 0, 1ull << 40),
      integer("original_cache.ttl_s", c.original_cache.ttl_s, 1, 86400),
      choice("result_storage.type", c.result_storage.type, {"none", "directory", "s3"}),
      text("result_storage.s3.bucket", c.result_storage.s3.bucket, true),
      text("result_storage.s3.prefix", c.result_storage.s3.prefix, true),
      text("result_storage.s3.endpoint", c.result_storage.s3.endpoint, true),
      text("result_storage.s3.region", c.result_storage.s3.region, false),
      choice("result_storage.s3.addressing", c.result_storage.s3.addressing, {"virtual", "path"}),
      text("result_storage.s3.access_key_id", c.result_storage.s3.access_key_id, true),
      text("result_storage.s3.secret_access_key", c.result_storage.s3.secret_access_key, true),
      text("result_storage.directory", c.result_storage.directory, true),
      integer("result_storage.ttl_s", c.result_storage.ttl_s, 1, 365 * 86400),
      integer("result_storage.revalidate_s", c.result_storage.revalidate_s, 0, 365 * 86400),
      boolean("result_storage.store_unsafe", c.result_storage.store_unsafe),
      text("smart.face_cascade", c.smart.face_cascade, true),
      integer("smart.remembered_originals", c.smart.remembered_originals, 0, 10'000'000),
      presets("presets", c.presets),
  };
}

Status config_error(const std::string& where, const std::string& reason) {
  return {Code::kBadRequest, where + ": " + reason};
}

// Every proper prefix of a field path is a section that must be a mapping.
std::set<std::string> sections_of(const std::vector<Field>& fields) {
  std::set<std::string> sections;
  for (const auto& field : fields) {
    for (auto dot = field.path.find('.'); dot != std::string::npos;
         dot = field.path.find('.', dot + 1)) {
      sections.insert(field.path.substr(0, dot));
    }
  }
  return sections;
}

Status check_keys(const YAML::Node& map, const std::string& prefix,
                  const std::set<std::string>& fields, const std::set<std::string>& sections) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const std::string key = entry.first.as<std::string>();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    // yaml-cpp keeps one of two equal keys silently; an operator would never notice.
    if (!seen.insert(key).second) return config_error(path, "appears twice");
    if (fields.count(path)) continue;
    if (!sections.count(path)) return config_error(path, "unknown key");
    if (entry.second.IsNull()) continue;
    if (!entry.second.IsMap()) return config_error(path, "expected a mapping of keys");
    if (Status s = check_keys(entry.second, path, fields, sections); !s.ok()) return s;
  }
  return Status::Ok();
}

YAML::Node find_node(const YAML::Node& root, const std::string& path) {
  // Node::operator= would overwrite the node's contents; reset() rebinds the handle.
  YAML::Node node;
  node.reset(root);
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& parent = node;
    YAML::Node child = parent[part];
    if (!child.IsDefined()) return child;
    node.reset(child);
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

YAML::Node node_from_env(const std::string& value, bool is_list) {
  if (!is_list) return YAML::Node(value);
  YAML::Node list(YAML::NodeType::Sequence);
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = value.substr(start, comma - start);
    if (!item.empty()) list.push_back(item);
    start = comma + 1;
  }
  return list;
}

bool is_http_url(const std::string& url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

Status validate(Config& c, const std::string& base_dir) {
  if (c.security.only_presets && c.presets.empty()) {
    return config_error("security.only_presets", "no presets are configured");
  }
  if (c.security.keys.empty() && !c.security.allow_unsafe) {
    return config_error("security.keys",
                        "at least one key is required (or set security.allow_unsafe: true)");
  }
  if (c.output.auto_quality_max < c.output.auto_quality_min) {
    return config_error("output.auto_quality_max", "must be at least output.auto_quality_min (" +
                                                       std::to_string(c.output.auto_quality_min) +
                                                       ")");
  }
  const HttpSourceConfig& http = c.source.http;
  if (c.source.type == "http") {
    if (http.base_url.empty() && http.allowed_hosts.empty()) {
      return config_error("source.http",
                          "set base_url or allowed_hosts: originals may not come "
                          "from any host");
    }
    if (!http.base_url.empty() && (!is_http_url(http.base_url) || !http.base_url.ends_with("/"))) {
      return config_error("source.http.base_url",
                          "must be an http(s) URL ending with '/', got '" + http.base_url + "'");
    }
  }
  const S3SourceConfig& s3 = c.source.s3;
  if (c.source.type == "s3") {
    const bool named = !s3.allowed_buckets.empty() || !s3.buckets.empty();
    if (s3.bucket.empty() == !named) {
      return config_error("source.s3",
                          "set either bucket, or buckets / allowed_buckets for keys that start "
                          "with a bucket's name");
    }
    for (const std::string& name : s3.allowed_buckets) {
      if (s3.buckets.count(name)) {
        return config_error("source.s3.buckets",
                            "'" + name + "' is also in allowed_buckets; name it once");
      }
    }
    if (!s3.endpoint.empty() &&
        (!is_http_url(s3.endpoint) ||
         s3.endpoint.find('/', s3.endpoint.find("://") + 3) != std::string::npos)) {
      return config_error(
          "source.s3.endpoint",
          "must be http(s)://host[:port] without a path, got '" + s3.endpoint + "'");
    }
    if (s3.access_key_id.empty() != s3.secret_access_key.empty()) {
      return config_error("source.s3", "access_key_id and secret_access_key go together");
    }
  }
  namespace fs = std::filesystem;
  if (c.result_storage.type == "s3" && c.result_storage.s3.bucket.empty()) {
    return config_error("result_storage.s3.bucket", "required with type: s3");
  }
  if (c.result_storage.type == "directory") {
    if (c.result_storage.directory.empty()) {
      return config_error("result_storage.directory", "required with type: directory");
    }
    fs::path directory(c.result_storage.directory);
    if (directory.is_relative()) directory = fs::path(base_dir) / directory;
    std::error_code made;
    fs::create_directories(directory, made);
    if (!fs::is_directory(directory, made)) {
      return config_error("result_storage.directory", "cannot create " + directory.string());
    }
    c.result_storage.directory = fs::weakly_canonical(directory, made).string();
  }
  fs::path root(c.source.file.root);
  if (root.is_relative()) root = fs::path(base_dir) / root;
  std::error_code ec;
  if (c.source.type == "file" && !fs::is_directory(root, ec)) {
    return config_error("source.file.root", "not a directory: " + root.string());
  }
  c.source.file.root = fs::weakly_canonical(root, ec).string();
  return Status::Ok();
}

}  // namespace

std::string env_name_for(const std::string& yaml_path) {
  std::string name = "THIMBLE_";
  for (char ch : yaml_path) {
    name += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return name;
}

bool is_preset_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string_view::npos;
}

std::vector<std::string> restart_required_changes(const Config& running, const Config& fresh) {
  std::vector<std::string> changed;
  auto check = [&](bool same, const char* what) {
    if (!same) changed.emplace_back(what);
  };
  check(running.server == fresh.server, "server");
  check(running.source == fresh.source, "source");
  // revalidate_s is read per request and reloads; the rest of result_storage builds the store.
  ResultStorageConfig running_store = running.result_storage;
  running_store.revalidate_s = fresh.result_storage.revalidate_s;
  check(running_store == fresh.result_storage, "result_storage");
  check(running.result_cache.memory_bytes == fresh.result_cache.memory_bytes,
        "result_cache.memory_bytes");
  check(running.result_cache.shards == fresh.result_cache.shards, "result_cache.shards");
  check(running.original_cache.memory_bytes == fresh.original_cache.memory_bytes,
        "original_cache.memory_bytes");
  check(running.smart.remembered_originals == fresh.smart.remembered_originals,
        "smart.remembered_originals");
  return changed;
}

std::vector<std::string> known_keys() {
  Config scratch;
  std::vector<std::string> keys;
  for (const auto& field : schema(scratch)) keys.push_back(field.path);
  return keys;
}

Result<Config> load_config_text(const std::string& yaml, const std::string& base_dir,
                                EnvLookup environment) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    std::ostringstream where;
    where << "line " << e.mark.line + 1 << ", column " << e.mark.column + 1;
    return config_error(where.str(), "not valid YAML (" + e.msg + ")");
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    return config_error("(top level)", "expected a mapping of sections");
  }

  Config config;
  const std::vector<Field> fields = schema(config);
  std::set<std::string> field_paths;
  for (const auto& field : fields) field_paths.insert(field.path);

  try {
    if (root.IsMap()) {
      if (Status s = check_keys(root, "", field_paths, sections_of(fields)); !s.ok()) return s;
    }
    for (const auto& field : fields) {
      YAML::Node node = find_node(root, field.path);
      if (node.IsDefined() && !node.IsNull()) {
        if (std::string reason = field.assign(node); !reason.empty()) {
          return config_error(field.path, reason);
        }
      }
      if (environment == nullptr) continue;
      const std::string env = env_name_for(field.path);
      if (const char* value = environment(env.c_str())) {
        if (std::string reason = field.assign(node_from_env(value, field.is_list));
            !reason.empty()) {
          return config_error(field.path + " (from " + env + ")", reason);
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return config_error("(configuration)", e.msg);
  }
  // The standard AWS variables, when the configuration names no credentials of its own.
  auto from_env = [&](const char* name, std::string& target) {
    if (const char* value = environment ? environment(name) : nullptr) target = value;
  };
  if (config.source.s3.access_key_id.empty()) {
    from_env("AWS_ACCESS_KEY_ID", config.source.s3.access_key_id);
    from_env("AWS_SECRET_ACCESS_KEY", config.source.s3.secret_access_key);
    from_env("AWS_SESSION_TOKEN", config.source.s3.session_token);
  }
  if (config.result_storage.s3.access_key_id.empty()) {
    from_env("AWS_ACCESS_KEY_ID", config.result_storage.s3.access_key_id);
    from_env("AWS_SECRET_ACCESS_KEY", config.result_storage.s3.secret_access_key);
  }
  if (Status s = validate(config, base_dir); !s.ok()) return s;
  return config;
}

Result<Config> load_config_file(const std::string& path, EnvLookup environment) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return config_error(path, "cannot read the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  Result<Config> config = load_config_text(text.str(), base.string(), environment);
  if (!config.ok()) {
    return Status(config.status().code(), path + ": " + config.status().message());
  }
  return config;
}

}  // namespace thimble::conf
