#include "proxy/origin_service.h"

#include "proxy/header_policy.h"
#include "proxy/status_table.h"
#include "transform/meta.h"

namespace thimble::proxy {
namespace {

constexpr std::size_t kMaxErrorMessage = 200;

std::shared_ptr<const std::string> text_body(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace

const std::string* OriginResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &value;
    }
  }
  return nullptr;
}

Result<OriginOptions> OriginOptions::from(const conf::Config& config) {
  OriginOptions options;
  Result<PresetTable> presets = PresetTable::from(config.presets);
  if (!presets.ok()) return presets.status();
  options.presets = std::move(presets).value();
  options.only_presets = config.security.only_presets;
  options.signature_header = config.security.signature_header;
  options.cache_control = config.cache_control;
  options.auto_webp = config.output.auto_webp;
  options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  options.max_url_bytes = static_cast<std::size_t>(config.limits.max_url_bytes);
  options.spec_limits = {.max_filters = config.limits.max_filters,
                         .max_blur_radius = config.limits.max_blur_radius,
                         .max_convolution_size = config.limits.max_convolution_size,
                         .max_round_corner_radius = config.limits.max_round_corner_radius,
                         .max_watermarks = config.limits.max_watermarks,
                         .min_max_bytes = config.limits.min_max_bytes};
  options.remembered_originals = static_cast<std::size_t>(config.smart.remembered_originals);
  // A 404 is not remembered longer than the CDN is told to keep it: once its error_max_age is
  // over, the CDN's next request must see an original uploaded since.
  options.not_found_ttl = std::chrono::seconds(
      std::min(config.result_cache.not_found_ttl_s, config.cache_control.error_max_age));
  options.original_cache_bytes = config.original_cache.memory_bytes;
  options.original_ttl = std::chrono::seconds(config.original_cache.ttl_s);
  transform::RenderSettings& r = options.render;
  r.max_source_pixels = config.limits.max_source_pixels;
  r.max_source_dimension = config.limits.max_source_dimension;
  r.max_decoder_memory_bytes = config.limits.max_decoder_memory_bytes;
  r.max_jpeg_scans = config.limits.max_jpeg_scans;
  r.max_output_dimension = config.limits.max_output_dimension;
  r.respect_orientation = config.output.respect_orientation;
  r.jpeg_quality = config.output.jpeg_quality;
  r.jpeg_progressive = config.output.jpeg_progressive;
  r.webp_quality = config.output.webp_quality;
  r.png_compression = config.output.png_compression;
  r.face_cascade = config.smart.face_cascade;
  return options;
}

namespace {

std::shared_ptr<const ServiceSettings> make_settings(OriginOptions options,
                                                     signing::UrlSigner signer) {
  const transform::RenderSettings& r = options.render;
  std::string fingerprint =
      "q" + std::to_string(r.jpeg_quality) + "p" + std::to_string(r.jpeg_progressive) + "w" +
      std::to_string(r.webp_quality) + "z" + std::to_string(r.png_compression) + "o" +
      std::to_string(r.respect_orientation);
  EntityTags etags(signer.keys());
  return std::make_shared<const ServiceSettings>(ServiceSettings{
      std::move(options), std::move(signer), std::move(etags), std::move(fingerprint)});
}

}  // namespace

OriginService::OriginService(OriginOptions options, signing::UrlSigner signer,
                             ServiceDependencies with)
    : focal_memory_(options.remembered_originals),
      store_(with.store),
      defer_(std::move(with.defer)),
      store_unsafe_(with.store_unsafe),
      metrics_(with.metrics),
      source_(*with.source),
      results_(*with.results),
      clock_(*with.clock),
      originals_(options.original_cache_bytes, 8, *with.clock) {
  settings_.store(make_settings(std::move(options), std::move(signer)));
}

void OriginService::reload(OriginOptions options, signing::UrlSigner signer) {
  settings_.store(make_settings(std::move(options), std::move(signer)));
}

OriginResponse OriginService::error(const Status& status, Route route) const {
  const CodeInfo info = code_info(status.code());
  OriginResponse response;
  response.route = route;
  response.status = info.http_status;
  // Messages may quote the URL; a hostile one is not echoed back at length.
  std::string message = status.message();
  if (message.size() > kMaxErrorMessage)
    message.replace(kMaxErrorMessage - 3, std::string::npos, "...");
  response.error = message;
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  if (info.caching == ErrorCaching::kShort) {
    response.headers.emplace_back(
        "Cache-Control",
        "public, max-age=" + std::to_string(settings()->options.cache_control.error_max_age));
  } else {
    response.headers.emplace_back("Cache-Control", "no-store");
  }
  if (status.code() == Code::kOverloaded) response.headers.emplace_back("Retry-After", "1");
  if (status.code() == Code::kMethodNotAllowed) response.headers.emplace_back("Allow", "GET, HEAD");
  response.body = text_body(std::to_string(info.http_status) + " " + std::string(info.reason) +
                            ": " + message + "\n");
  return response;
}

void OriginService::add_validators(
    OriginResponse& response, const std::string& etag,
    const std::optional<std::chrono::system_clock::time_point>& last_modified, bool vary_accept,
    std::optional<int> url_max_age) const {
  const conf::CacheControlConfig& cache_control = settings()->options.cache_control;
  const int max_age = max_age_for(cache_control, url_max_age);
  response.headers.emplace_back("Cache-Control",
                                cache_control_for_success(cache_control, url_max_age));
  response.headers.emplace_back("Expires",
                                http_date(clock_.wall_now() + std::chrono::seconds(max_age)));
  response.headers.emplace_back("ETag", etag);
  if (last_modified) response.headers.emplace_back("Last-Modified", http_date(*last_modified));
  if (vary_accept) response.headers.emplace_back("Vary", "Accept");
}

OriginResponse OriginService::answer_from(std::shared_ptr<const cache::CachedResult> cached,
                                          const std::string& if_none_match,
                                          const std::string& if_modified_since) const {
  bool not_modified = false;
  if (!if_none_match.empty()) {
    not_modified = if_none_match_matches(if_none_match, cached->etag);
  } else if (auto since = parse_http_date(if_modified_since); since && cached->last_modified) {
    not_modified = *cached->last_modified <= *since;
  }
  OriginResponse response;
  response.status = not_modified ? 304 : 200;
  add_validators(response, cached->etag, cached->last_modified, cached->vary_accept,
                 cached->url_max_age);
  if (!not_modified) {
    response.headers.emplace_back("Content-Type", cached->content_type);
    // Shares the cached bytes: no copy per hit.
    response.body = std::shared_ptr<const std::string>(cached, &cached->body);
  }
  return response;
}

std::variant<OriginResponse, Job> OriginService::begin(const OriginRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    return error({Code::kMethodNotAllowed, "only GET and HEAD are supported"}, Route::kOther);
  }
  if (request.path == "/healthz" || request.path == "/readyz") {
    bool ready = request.path == "/healthz" || !draining();
    OriginResponse response;
    response.route = Route::kHealth;
    response.status = ready ? 200 : 503;
    response.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                        {"Cache-Control", "no-store"}};
    response.body = text_body(ready ? "ok\n" : "draining\n");
    return response;
  }
  if (metrics_ && request.listener != Listener::kPublic && request.path == "/metrics") {
    OriginResponse response;
    response.route = Route::kMetrics;
    response.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
                        {"Cache-Control", "no-store"}};
    response.body = text_body(metrics_->render());
    return response;
  }
  if (request.listener == Listener::kAdmin) {
    return error({Code::kNotFound, "the admin listener serves /healthz, /readyz and /metrics only"},
                 Route::kOther);
  }
  if (request.path == "/" || request.path == "/favicon.ico" || request.path == "/robots.txt" ||
      request.path == "/metrics") {
    return error({Code::kNotFound, "no such resource"}, Route::kOther);
  }

  // One snapshot of the settings for the whole request, even across a reload.
  std::shared_ptr<const ServiceSettings> current = settings();
  if (request.path.size() > current->options.max_url_bytes) {
    return error(
        {Code::kUriTooLong,
         "the URL is longer than " + std::to_string(current->options.max_url_bytes) + " bytes"});
  }
  // A signature carried in the configured header stands in front of the path, where it would
  // be in a Thumbor URL (for CDNs that strip it from the path to find stored results).
  const bool header_signed =
      !current->options.signature_header.empty() && !request.signature.empty();
  const std::string path = header_signed ? "/" + request.signature + request.path : request.path;
  // The options and image the URL asks for: after its signature, or a preset's expansion.
  std::optional<PresetTable::Expansion> expanded;
  std::string_view wanted;
  if (path.starts_with("/") && std::string_view(path).substr(1).starts_with(PresetTable::kPrefix)) {
    // `/preset:NAME/<image>`: no signature, public presets only.
    auto expansion = current->options.presets.expand(path.substr(1), false);
    if (!expansion.ok()) return error(expansion.status(), Route::kPreset);
    expanded = std::move(expansion).value();
  } else {
    Result<std::string_view> signed_part = current->signer.verify(path);
    if (!signed_part.ok()) return error(signed_part.status());
    if (signed_part->starts_with(PresetTable::kPrefix)) {
      auto expansion = current->options.presets.expand(*signed_part, true);
      if (!expansion.ok()) return error(expansion.status(), Route::kPreset);
      expanded = std::move(expansion).value();
    } else if (current->options.only_presets) {
      return error({Code::kBadSignature, "this server only serves presets (preset:NAME/<image>)"});
    } else {
      wanted = *signed_part;
    }
  }
  const bool preset = expanded.has_value();
  if (preset) wanted = expanded->path;
  Result<transform::ThumbnailSpec> spec = transform::parse_spec(wanted);
  if (spec.ok() && preset) {
    if (Status only = PresetTable::check_image_only(*expanded, spec->image); !only.ok())
      spec = only;
  }
  if (spec.ok()) {
    if (Status within = transform::check_limits(*spec, current->options.spec_limits); !within.ok())
      spec = within;
  }
  if (!spec.ok()) return error(spec.status(), preset ? Route::kPreset : Route::kThumbnail);

  Job job;
  job.route = preset ? Route::kPreset : spec->meta ? Route::kMeta : Route::kThumbnail;
  job.vary_accept = current->options.auto_webp && !spec->format;
  if (job.vary_accept && accepts_webp(request.accept))
    job.negotiated = transform::ImageFormat::kWebp;
  job.cache_key = spec->canonical() + "|" + spec->image + "|" +
                  (spec->format     ? std::string(transform::format_name(*spec->format))
                   : job.negotiated ? "webp-negotiated"
                                    : "source") +
                  "|" + current->fingerprint;
  job.transform = transform_hash(job.cache_key);
  job.unsafe = path.starts_with("/unsafe/");
  job.spec = std::move(spec).value();
  job.if_none_match = request.if_none_match;
  job.if_modified_since = request.if_modified_since;

  if (auto cached = results_.get(job.cache_key)) {
    OriginResponse response =
        answer_from(std::move(cached), request.if_none_match, request.if_modified_since);
    response.cache_outcome = "hit";
    response.route = job.route;
    response.source_key = job.spec.image;
    return response;
  }
  if (draining()) return error({Code::kOverloaded, "the server is shutting down"}, job.route);
  job.deadline = clock_.steady_now() + current->options.request_timeout;
  job.settings = std::move(current);
  return job;
}

Result<std::shared_ptr<const OriginService::Mark>> OriginService::watermark(
    const std::string& key, std::chrono::steady_clock::time_point deadline) const {
  std::optional<std::shared_ptr<const Mark>> known = marks_.get(key);
  FetchConditions conditions;
  conditions.deadline = deadline;
  if (known) conditions.if_token_in = {(*known)->token};
  Result<SourceObject> fetched = timed_fetch(key, conditions, nullptr);
  if (!fetched.ok()) {
    // A mark that does not exist or may not be read is the URL's fault (400, as in Thumbor); a
    // failing or slow source keeps its own status, so the answer is not cached.
    const Code code = fetched.status().code();
    const bool url_fault =
        code == Code::kNotFound || code == Code::kSourceForbidden || code == Code::kBadRequest;
    return Status(url_fault ? Code::kBadRequest : code,
                  "watermark image '" + key + "': " + fetched.status().message());
  }
  if (fetched->not_modified && known) return *known;
  auto mark =
      std::make_shared<const Mark>(Mark{std::move(fetched->bytes), fetched->validators.token});
  marks_.put(key, mark);
  return std::shared_ptr<const Mark>(mark);
}

std::chrono::steady_clock::time_point OriginService::steady_deadline(const Job& job) const {
  // The job's deadline is on the injected clock; sources and render() read the real one.
  return std::chrono::steady_clock::now() + (job.deadline - clock_.steady_now());
}

OriginResponse OriginService::run(const Job& job) const {
  WorkTimes times;
  OriginResponse response = produce_answer(job, times);
  response.route = job.route;
  response.source_key = job.spec.image;
  response.times = times;
  return response;
}

bool OriginService::coalesce(Job& job, std::function<void(OriginResponse)> answer) const {
  auto on_land = [this, job,
                  answer = std::move(answer)](const std::shared_ptr<const Produced>& produced) {
    answer(coalesced_answer(job, produced));
  };
  // A revalidation may end in a 304 from the source without a transform, so it never leads; it
  // may wait for one that transforms.
  if (!job.if_none_match.empty() || !job.if_modified_since.empty()) {
    return renders_.join(job.cache_key, job.deadline, std::move(on_land));
  }
  RenderFlights::Joining joining =
      renders_.join_or_open(job.cache_key, job.deadline, std::move(on_land), [] {
        return Produced(Status(Code::kOverloaded,
                               "the identical request this one waited for "
                               "could not be served"));
      });
  job.lease = std::move(joining.lease);
  return joining.joined;
}

OriginResponse OriginService::coalesced_answer(
    const Job& job, const std::shared_ptr<const Produced>& produced) const {
  ++coalesced_;
  OriginResponse response =
      !produced ? error({Code::kInternal, "the identical request this one waited for failed"})
      : !produced->ok() ? error(produced->status())
                        : answer_from(**produced, job.if_none_match, job.if_modified_since);
  response.cache_outcome = "coalesced";
  response.route = job.route;
  response.source_key = job.spec.image;
  return response;
}

OriginResponse OriginService::produce_answer(const Job& job, WorkTimes& times) const {
  // The requests parked on this one get its answer, failures included.
  const auto fail = [&](const Status& status) {
    if (job.lease) job.lease->land(status);
    return error(status);
  };
  if (clock_.steady_now() > job.deadline) {
    return fail({Code::kOverloaded, "the request waited too long for a worker"});
  }
  // Watermark images first: their versions are part of the thumbnail's validator.
  std::vector<std::shared_ptr<const Mark>> held_marks;
  transform::WatermarkSources marks;
  std::string mark_versions;
  for (const std::string& key : transform::watermark_keys(job.spec.filters)) {
    Result<std::shared_ptr<const Mark>> mark = watermark(key, steady_deadline(job));
    if (!mark.ok()) return fail(mark.status());
    held_marks.push_back(*mark);
    marks.emplace(key, (*mark)->bytes);
    mark_versions += key + "=" + (*mark)->token + ";";
  }
  // The thumbnail's validator: the original's, and the marks' versions when there are marks.
  const std::string marks_digest = EntityTags::marks_digest(mark_versions);

  FetchConditions conditions;
  conditions.deadline = steady_deadline(job);
  conditions.if_token_in =
      job.settings->etags.source_tokens(job.if_none_match, job.transform, marks_digest);
  if (job.if_none_match.empty()) {
    conditions.if_modified_since = parse_http_date(job.if_modified_since);
  }

  // A revalidation asks the source first: an unchanged original is a 304 with no transform.
  std::shared_ptr<const FetchedOriginal> prefetched;
  if (!conditions.if_token_in.empty() || conditions.if_modified_since) {
    prefetched = std::make_shared<const FetchedOriginal>(
        FetchedOriginal::from(timed_fetch(job.spec.image, conditions, &times)));
    if (!prefetched->object.ok()) return error(prefetched->object.status());
    const SourceObject& checked = *prefetched->object;
    if (checked.not_modified) {
      OriginResponse response;
      response.status = 304;
      response.cache_outcome = "miss";
      add_validators(
          response, job.settings->etags.make(job.transform, checked.validators.token, marks_digest),
          checked.validators.last_modified, job.vary_accept, job.spec.max_age);
      return response;
    }
  }

  // The answer may have landed while this request waited for a worker.
  if (auto cached = results_.get(job.cache_key)) {
    if (job.lease) job.lease->land(cached);
    OriginResponse response =
        answer_from(std::move(cached), job.if_none_match, job.if_modified_since);
    response.cache_outcome = "hit";
    return response;
  }
  // Identical requests share one fetch and one transform: those parked on this one's flight
  // (coalesce()), and those that reached a worker while it was in the air.
  const auto work = [&] { return produce(job, marks, marks_digest, prefetched, times); };
  std::shared_ptr<const Produced> produced;
  if (job.lease) {
    produced = job.lease->fly(work);
  } else {
    auto flight = renders_.run(job.cache_key, job.deadline, work);
    if (!flight.value) {
      return error({Code::kOverloaded, "the request waited too long for the same thumbnail"});
    }
    if (!flight.leader) return coalesced_answer(job, flight.value);
    produced = std::move(flight.value);
  }
  if (!produced->ok()) return error(produced->status());
  OriginResponse response = answer_from(**produced, job.if_none_match, job.if_modified_since);
  response.cache_outcome = "miss";
  return response;
}

Result<SourceObject> OriginService::timed_fetch(const std::string& key,
                                                const FetchConditions& conditions,
                                                WorkTimes* times) const {
  ++fetches_;
  const auto started = std::chrono::steady_clock::now();
  Result<SourceObject> fetched = source_.fetch(key, conditions);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  if (times) times->fetch_ms += took.count() * 1000;
  if (metrics_) {
    metrics_->observe_stage(Stage::kFetch, took.count());
    if (!fetched.ok()) metrics_->source_error(fetched.status().code());
  }
  return fetched;
}

FetchedOriginal FetchedOriginal::from(Result<SourceObject> fetched) {
  FetchedOriginal original{std::move(fetched), std::nullopt};
  if (original.object.ok() && !original.object->not_modified) {
    const std::string& bytes = original.object->bytes;
    Result<transform::ImageInfo> header = transform::sniff(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    if (header.ok()) original.header = *header;
  }
  return original;
}

std::shared_ptr<const FetchedOriginal> OriginService::fetch_original(const std::string& key,
                                                                     const Job& job,
                                                                     WorkTimes& times) const {
  const auto now = clock_.steady_now();
  if (std::optional<std::chrono::steady_clock::time_point> until = not_found_.get(key);
      until && *until > now) {
    ++not_found_hits_;
    return std::make_shared<const FetchedOriginal>(
        FetchedOriginal{Status(Code::kNotFound, "source not found"), std::nullopt});
  }
  // Kept from a recent fetch: the other sizes of a photo do not fetch it again.
  if (std::shared_ptr<const FetchedOriginal> kept = originals_.get(key)) {
    ++original_hits_;
    return kept;
  }
  // Several sizes of one new photo requested at once share one download.
  auto flight = downloads_.run(key, job.deadline, [&] {
    FetchConditions conditions;
    conditions.deadline = steady_deadline(job);
    return FetchedOriginal::from(timed_fetch(key, conditions, &times));
  });
  if (!flight.value) {
    return std::make_shared<const FetchedOriginal>(FetchedOriginal{
        Status(Code::kOverloaded, "the request waited too long for the original"), std::nullopt});
  }
  const Result<SourceObject>& fetched = flight.value->object;
  if (flight.leader && fetched.ok() && !fetched->not_modified) {
    originals_.put(key, flight.value, job.settings->options.original_ttl);
  }
  if (!fetched.ok() && fetched.status().code() == Code::kNotFound &&
      job.settings->options.not_found_ttl.count() > 0) {
    not_found_.put(key, now + job.settings->options.not_found_ttl);
  }
  return flight.value;
}

Result<std::shared_ptr<const cache::CachedResult>> OriginService::produce(
    const Job& job, const transform::WatermarkSources& marks, const std::string& marks_digest,
    std::shared_ptr<const FetchedOriginal> original, WorkTimes& times) const {
  const bool storable = store_ != nullptr && (!job.unsafe || store_unsafe_);
  // The result's path in result storage: its canonical request path. Made here, on a worker and
  // only with storage configured: ThumbnailSpec::path() parses the URL once more.
  const std::string store_key =
      storable ? job.spec.path() + (job.negotiated ? ".webp" : "") : std::string();
  // Another replica may have made it already: read it instead of fetching and transforming. Its
  // ETag names the transform, output settings included: one made with other settings (before a
  // change of quality, say) is made again and replaced.
  if (storable && !original) {
    if (std::shared_ptr<const cache::CachedResult> stored = store_->read(store_key);
        stored && job.settings->etags.issued_for(stored->etag, job.transform)) {
      ++store_hits_;
      results_.put(
          job.cache_key, stored,
          std::chrono::seconds(max_age_for(job.settings->options.cache_control, job.spec.max_age)));
      return stored;
    }
  }
  if (!original) original = fetch_original(job.spec.image, job, times);
  if (!original->object.ok()) return original->object.status();
  const SourceObject& source = *original->object;
  const std::string etag =
      job.settings->etags.make(job.transform, source.validators.token, marks_digest);
  const auto bytes =
      std::span(reinterpret_cast<const std::uint8_t*>(source.bytes.data()), source.bytes.size());
  transform::RenderRequest request;
  request.negotiated = job.negotiated;
  // One version of one original: its key and its validator.
  request.focal_cache = {&focal_memory_, job.spec.image + "@" + source.validators.token};
  request.watermarks = marks;
  request.deadline = steady_deadline(job);
  request.header = original->header;
  ++renders_count_;
  auto cached = std::make_shared<cache::CachedResult>();
  if (job.spec.meta) {
    // meta/: the JSON description, from the header alone.
    Result<std::string> json =
        transform::describe(bytes, job.spec, job.settings->options.render, request);
    if (!json.ok()) return json.status();
    cached->body = std::move(json).value();
    cached->content_type = "application/json";
  } else {
    Result<transform::Thumbnail> thumbnail =
        transform::render(bytes, job.spec, job.settings->options.render, request);
    if (!thumbnail.ok()) return thumbnail.status();
    cached->body = std::move(thumbnail->bytes);
    cached->content_type = std::string(transform::mime_type(thumbnail->format));
    times.stages = thumbnail->times;
    if (metrics_) {
      const transform::StageTimes& t = thumbnail->times;
      metrics_->observe_stage(Stage::kSniff, t.sniff_ms / 1000);
      metrics_->observe_stage(Stage::kDecode, t.decode_ms / 1000);
      if (job.spec.smart) metrics_->observe_stage(Stage::kSmart, t.smart_ms / 1000);
      metrics_->observe_stage(Stage::kTransform, t.transform_ms / 1000);
      metrics_->observe_stage(Stage::kEncode, t.encode_ms / 1000);
    }
  }
  cached->etag = etag;
  cached->last_modified = source.validators.last_modified;
  cached->vary_accept = job.vary_accept;
  cached->url_max_age = job.spec.max_age;
  results_.put(
      job.cache_key, cached,
      std::chrono::seconds(max_age_for(job.settings->options.cache_control, job.spec.max_age)));
  if (storable) {
    // Written after the answer, never delaying it.
    auto write = [store = store_, key = store_key, cached] { store->write(key, *cached); };
    if (defer_) {
      defer_(write);
    } else {
      write();
    }
  }
  return std::shared_ptr<const cache::CachedResult>(cached);
}

OriginService::Counters OriginService::counters() const {
  return {fetches_.load(),        renders_count_.load(), coalesced_.load(),
          not_found_hits_.load(), store_hits_.load(),    original_hits_.load()};
}

OriginResponse OriginService::handle(const OriginRequest& request) const {
  auto first = begin(request);
  if (auto* response = std::get_if<OriginResponse>(&first)) return std::move(*response);
  return run(std::get<Job>(first));
}

}  // namespace thimble::proxy
