// Config: Thimble's whole configuration as plain typed structs, loaded from one YAML file plus
// THIMBLE_* environment overrides. Every module receives only its own struct; no module reads
// YAML, the environment or globals. The defaults below are the production defaults; every field
// is listed with its YAML key in README.md ("Configuration").
//
// Loading is strict: an unknown key, a value of the wrong type or out of range is refused with
// the YAML key path and the reason ("server.port: must be between 1 and 65535, got 70000").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"

namespace thimble::conf {

struct ServerConfig {
  std::string host = "127.0.0.1";  // server.host: address to listen on
  int port = 8888;                 // server.port
  // server.admin_port: a second listener for /healthz, /readyz and /metrics, which the main port
  // then stops serving /metrics on; 0 = all routes on the main port.
  int admin_port = 0;
  int reactor_threads = 1;  // server.reactor_threads: Pistache I/O threads
  int workers = 0;          // server.workers: transform threads; 0 = one per core
  // server.worker_nice: the transform threads' nice value (0-19) above the process's, so that
  // CPU-bound transforms never slow the reactor's cache hits, 304s and refusals.
  int worker_nice = 10;
  int queue_length = 64;  // server.queue_length: jobs waiting; beyond → 503
  // server.listen_backlog: connections the kernel holds before Thimble accepts them (capped by
  // net.core.somaxconn); a burst beyond it waits for the client's SYN retry, a second or more.
  int listen_backlog = 1024;
  std::uint64_t max_request_bytes = 16384;  // server.max_request_bytes: request line + headers
  // server.request_timeout_ms: the processing deadline of a request (queue wait, fetch,
  // transform); past it the answer is 503 (504 when the source was the slow part) and the work
  // stops at the next step.
  int request_timeout_ms = 30000;
  int keepalive_timeout_s = 75;  // server.keepalive_timeout_s: idle keep-alive connections
  // server.header_timeout_ms: a request head must be complete this long after its first byte
  // (and a new connection must send one); else 408 and the connection ends.
  int header_timeout_ms = 15000;
  // server.write_timeout_ms: an answer whose client takes none of it for this long is abandoned
  // and its connection closed.
  int write_timeout_ms = 30000;
  int drain_timeout_ms = 20000;  // server.drain_timeout_ms: SIGTERM grace for in-flight work
  bool access_log = true;        // server.access_log: one JSON line per request on stdout

  bool operator==(const ServerConfig&) const = default;
};

struct SecurityConfig {
  // security.keys: HMAC keys; the first signs, all verify (rotation). Required.
  std::vector<std::string> keys;
  bool allow_unsafe = false;  // security.allow_unsafe: accept `/unsafe/...` URLs
  bool only_presets = false;  // security.only_presets: refuse URLs that are not a preset
  // security.signature_header: a request header that may carry the signature of a path without
  // one (`/<options>/<image>`), for CDNs that move it out of the path; "" = never.
  std::string signature_header;
};

// Whether `name` may name a preset: 1-64 characters of a-z, 0-9, `_` and `-`.
bool is_preset_name(std::string_view name);

// A named set of Thumbor options, applied by `/<signature>/preset:NAME/<image>`.
struct Preset {
  std::string options;  // e.g. "fit-in/200x200/filters:quality(75)"
  // Public presets also answer `/preset:NAME/<image>` without a signature.
  bool is_public = false;
};

struct FileSourceConfig {
  // source.file.root: folder of originals; relative paths are relative to the config file.
  std::string root = "samples";

  bool operator==(const FileSourceConfig&) const = default;
};

struct HttpSourceConfig {
  // source.http.base_url: keys are paths appended to it (must end with '/'); empty = keys are
  // absolute or scheme-less URLs whose host must be in allowed_hosts.
  std::string base_url;
  std::vector<std::string> allowed_hosts;  // source.http.allowed_hosts: host, host:port, *.domain
  std::string default_scheme = "https";    // source.http.default_scheme: for `host/path` keys
  // source.http.allow_private_networks: internal networks that may be reached anyway (CIDR).
  std::vector<std::string> allow_private_networks;
  int connect_timeout_ms = 2000;       // source.http.connect_timeout_ms
  int timeout_ms = 10000;              // source.http.timeout_ms: per fetch, retries included
  int max_redirects = 3;               // source.http.max_redirects
  int retries = 2;                     // source.http.retries: for 5xx and resets only
  std::string user_agent = "Thimble";  // source.http.user_agent

  bool operator==(const HttpSourceConfig&) const = default;
};

// One entry of source.s3.buckets: what an image key starting with its name reads.
struct S3BucketConfig {
  std::string bucket;      // the bucket's real name; empty: the entry's name
  std::string key_prefix;  // prepended to the rest of the key
  std::string region;      // the bucket's region when not the source's (signs its requests)

  bool operator==(const S3BucketConfig&) const = default;
};

struct S3SourceConfig {
  std::string endpoint;                // source.s3.endpoint: S3-compatible store; empty = AWS
  std::string region = "us-east-1";    // source.s3.region
  std::string addressing = "virtual";  // source.s3.addressing: virtual (bucket.host) or path
  // source.s3.access_key_id / secret_access_key / session_token; empty: AWS_ACCESS_KEY_ID,
  // AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN from the environment; none at all: unsigned.
  std::string access_key_id, secret_access_key, session_token;
  std::string bucket;      // source.s3.bucket: fixed bucket (keys are object keys)
  std::string key_prefix;  // source.s3.key_prefix: prepended to keys in the fixed bucket
  std::vector<std::string> allowed_buckets;  // source.s3.allowed_buckets: first key segment
  // source.s3.buckets: named buckets; an image key's first segment picks one (an alias, with
  // its own bucket, key prefix and region). allowed_buckets: [a] is short for buckets: {a: {}}.
  std::map<std::string, S3BucketConfig> buckets;
  std::vector<std::string> allowed_key_prefixes;  // source.s3.allowed_key_prefixes: tenancy
  std::string access_denied_as = "404";           // source.s3.access_denied_as: 404 or 403
  int connect_timeout_ms = 2000;                  // source.s3.connect_timeout_ms
  int timeout_ms = 10000;                         // source.s3.timeout_ms
  int retries = 2;                                // source.s3.retries

  bool operator==(const S3SourceConfig&) const = default;
};

struct SourceConfig {
  std::string type = "file";  // source.type: where originals come from (file, http, s3)
  FileSourceConfig file;
  HttpSourceConfig http;
  S3SourceConfig s3;

  bool operator==(const SourceConfig&) const = default;
};

struct LimitsConfig {
  std::uint64_t max_source_bytes = 64ull << 20;   // limits.max_source_bytes
  std::uint64_t max_source_pixels = 100'000'000;  // limits.max_source_pixels: from the header
  int max_source_dimension = 30000;               // limits.max_source_dimension: either side
  // limits.max_decoder_memory_bytes: a decoder's working memory beyond the pixels (a progressive
  // JPEG keeps 2 bytes x 64 coefficients per block and component: 6 bytes a pixel at 4:4:4,
  // 3 at 4:2:0); more gets 413.
  std::uint64_t max_decoder_memory_bytes = 512ull << 20;
  int max_jpeg_scans = 100;  // limits.max_jpeg_scans: scans of a progressive JPEG; more gets 415
  int max_output_dimension = 6000;  // limits.max_output_dimension: either side
  // Animated GIF and WebP, from the header before decoding: frames, and pixels summed over frames.
  int max_frames = 1000;                             // limits.max_frames
  std::uint64_t max_animation_pixels = 200'000'000;  // limits.max_animation_pixels
  int max_url_bytes =
      8192;  // limits.max_url_bytes: request path (CloudFront's limit); longer → 414
  // What one URL's filters may ask for; over a limit → 400 naming the filter.
  int max_filters = 32;                // limits.max_filters: pixel filters per URL
  int max_blur_radius = 150;           // limits.max_blur_radius: blur() radius (at most 150)
  int max_convolution_size = 15;       // limits.max_convolution_size: matrix side (at most 15)
  int max_round_corner_radius = 1000;  // limits.max_round_corner_radius: round_corner() radius
  int max_watermarks = 5;              // limits.max_watermarks: watermark() calls (at most 16)
  int min_max_bytes = 1024;            // limits.min_max_bytes: smallest max_bytes() accepted
};

struct OutputConfig {
  int jpeg_quality = 80;         // output.jpeg_quality: 1-100, `quality()` overrides
  bool jpeg_progressive = true;  // output.jpeg_progressive
  int webp_quality = 80;         // output.webp_quality: 1-100, `quality()` overrides
  int png_compression = 6;       // output.png_compression: 0-9 (7-9: full deflate search)
  bool auto_webp = false;        // output.auto_webp: WebP when Accept allows, with Vary: Accept
  int avif_quality = 60;         // output.avif_quality: 1-100, `quality()` overrides
  int avif_speed = 8;            // output.avif_speed: libaom speed 0 (slowest) to 10
  bool auto_avif = false;        // output.auto_avif: AVIF when Accept allows, before WebP
  // output.quality: `fixed` encodes JPEG, WebP and AVIF at the qualities above; `auto` at the
  // lowest quality in [auto_quality_min, auto_quality_max] whose thumbnail keeps a luma SSIM of
  // at least auto_quality_ssim against the unencoded one (transform/auto_quality.h). A URL's
  // quality(N) wins; quality(auto) asks for the search whatever this says.
  std::string quality = "fixed";
  double auto_quality_ssim = 0.98;  // output.auto_quality_ssim: 0.5-0.9999
  int auto_quality_min = 30;        // output.auto_quality_min: 1-100
  int auto_quality_max = 90;        // output.auto_quality_max: 1-100, at least the minimum
  bool respect_orientation = true;  // output.respect_orientation: apply EXIF orientation
  // output.color_management: `srgb` converts an embedded ICC profile's colours to sRGB (what
  // browsers assume); `ignore` leaves the decoded values as they are.
  std::string color_management = "srgb";
  // output.chroma_subsampling: `auto` keeps colour at half resolution (4:2:0) unless a small
  // thumbnail (at most 640x640) has sharp colour edges it would smear, such as coloured text and
  // line art: then JPEG and AVIF keep full colour (4:4:4) and WebP, always 4:2:0, converts with
  // libwebp's sharp YUV. `420` always subsamples; `444` never does (WebP: sharp YUV).
  std::string chroma_subsampling = "auto";
};

struct CacheControlConfig {
  int max_age = 86400;              // cache_control.max_age: seconds, for thumbnails
  int s_maxage = -1;                // cache_control.s_maxage: seconds for shared caches; -1 = unset
  int stale_while_revalidate = -1;  // cache_control.stale_while_revalidate: -1 = unset
  int error_max_age = 60;           // cache_control.error_max_age: for 4xx answers
};

struct ResultCacheConfig {
  std::uint64_t memory_bytes = 256ull << 20;  // result_cache.memory_bytes: 0 disables
  int shards = 16;                            // result_cache.shards: lock striping
  int not_found_ttl_s = 10;  // result_cache.not_found_ttl_s: a source's 404 is believed this long
};

struct SmartConfig {
  // smart.face_cascade: OpenCV cascade for faces (Debian's opencv-data). The LBP frontal-face
  // cascade finds the faces Haar's does at a sixth of its cost; Thumbor's own Haar cascade
  // (haarcascades/haarcascade_frontalface_alt.xml) can be named instead. Empty or missing means
  // smart/ uses corner features only.
  std::string face_cascade = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface.xml";
  int remembered_originals = 10000;  // smart.remembered_originals: focal points kept in memory
};

struct OriginalCacheConfig {
  // original_cache.memory_bytes: originals kept in memory, so the other sizes of a photo do not
  // fetch it again; 0 disables.
  std::uint64_t memory_bytes = 64ull << 20;
  int ttl_s = 60;  // original_cache.ttl_s: how long a kept original is used without asking
};

struct ResultStorageS3Config {
  std::string bucket;                  // result_storage.s3.bucket
  std::string prefix;                  // result_storage.s3.prefix: e.g. "thumbnails/"
  std::string endpoint;                // result_storage.s3.endpoint: empty = AWS
  std::string region = "us-east-1";    // result_storage.s3.region
  std::string addressing = "virtual";  // result_storage.s3.addressing: virtual or path
  // result_storage.s3.access_key_id / secret_access_key; empty: the AWS_* environment.
  std::string access_key_id, secret_access_key;

  bool operator==(const ResultStorageS3Config&) const = default;
};

struct ResultStorageConfig {
  std::string type = "none";  // result_storage.type: none, directory or s3
  // result_storage.directory: where results are written (created if missing); relative paths
  // are relative to the config file. Files sit at their canonical request path.
  std::string directory;
  int ttl_s = 86400;  // result_storage.ttl_s: older stored results are misses
  // result_storage.revalidate_s: a result (stored, or held in memory) whose original was last
  // checked longer ago is checked with the source again before it is served; 0 checks every time.
  int revalidate_s = 60;
  bool store_unsafe = false;  // result_storage.store_unsafe: also store /unsafe/ URLs' results
  ResultStorageS3Config s3;

  bool operator==(const ResultStorageConfig&) const = default;
};

struct Config {
  ServerConfig server;
  SecurityConfig security;
  SourceConfig source;
  LimitsConfig limits;
  OutputConfig output;
  CacheControlConfig cache_control;
  ResultCacheConfig result_cache;
  ResultStorageConfig result_storage;
  OriginalCacheConfig original_cache;
  SmartConfig smart;
  // presets: name → options (a string) or {options: ..., public: true}. Names are 1-64 characters
  // of [a-z0-9_-].
  std::map<std::string, Preset> presets;
};

// Where an environment override for a key comes from: `server.port` → THIMBLE_SERVER_PORT,
// `source.file.root` → THIMBLE_SOURCE_FILE_ROOT. Lists are comma-separated.
std::string env_name_for(const std::string& yaml_path);

// The keys that differ between the running configuration and a reloaded one but only take
// effect on a restart (listeners, sources, result storage, memory sizes), as YAML key paths or
// sections. Everything else (keys, presets, lifetimes, output settings, limits) applies at once.
std::vector<std::string> restart_required_changes(const Config& running, const Config& fresh);

// Reads `path`, applies overrides from `environment` (a getenv-like lookup; nullptr = none) and
// validates. Relative paths inside are resolved against the config file's folder.
using EnvLookup = const char* (*)(const char* name);
Result<Config> load_config_file(const std::string& path, EnvLookup environment);

// Same, from YAML text; `base_dir` resolves relative paths. Used by tests and --check-config.
Result<Config> load_config_text(const std::string& yaml, const std::string& base_dir,
                                EnvLookup environment);

// The YAML key paths Thimble understands, in declaration order (for docs and tests).
std::vector<std::string> known_keys();

}  // namespace thimble::conf
