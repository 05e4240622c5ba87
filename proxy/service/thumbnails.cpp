#include "proxy/service/thumbnails.h"

#include "proxy/common/access_log.h"
#include "proxy/common/header_policy.h"
#include "transform/meta.h"

namespace thimble::proxy {

Thumbnails::Thumbnails(Dependencies with)
    : originals_(*with.originals),
      results_(*with.results),
      clock_(*with.clock),
      store_(with.store),
      defer_(std::move(with.defer)),
      store_unsafe_(with.store_unsafe),
      metrics_(with.metrics),
      focal_memory_(with.remembered_originals) {}

OriginResponse Thumbnails::answer(const Job& job,
                                  std::shared_ptr<const cache::CachedResult> result) const {
  return result_answer(std::move(result), job.conditions, job.settings->options.cache_control,
                       clock_.wall_now());
}

OriginResponse Thumbnails::failure(const Job& job, const Status& status) const {
  return error_answer(status, job.route, job.settings->options.cache_control);
}

std::optional<OriginResponse> Thumbnails::cached(const Job& job) const {
  std::shared_ptr<const cache::CachedResult> result = results_.get(job.cache_key);
  if (!result) return std::nullopt;
  OriginResponse response = answer(job, std::move(result));
  response.cache_outcome = "hit";
  return response;
}

Thumbnails::Parking Thumbnails::park(const Job& job, Answer answer) const {
  auto on_land = [this, job,
                  answer = std::move(answer)](const std::shared_ptr<const Produced>& produced) {
    answer(coalesced_answer(job, produced));
  };
  if (job.conditions.any()) {
    return {renders_.join(job.cache_key, job.deadline, std::move(on_land)), nullptr};
  }
  auto joining = renders_.join_or_open(job.cache_key, job.deadline, std::move(on_land), [] {
    return Produced(
        Status(Code::kOverloaded, "the identical request this one waited for could not be served"));
  });
  return {joining.joined, std::move(joining.lease)};
}

OriginResponse Thumbnails::coalesced_answer(const Job& job,
                                            const std::shared_ptr<const Produced>& produced) const {
  ++coalesced_;
  OriginResponse response =
      !produced
          ? failure(job, {Code::kInternal, "the identical request this one waited for failed"})
      : !produced->ok() ? failure(job, produced->status())
                        : answer(job, **produced);
  response.cache_outcome = "coalesced";
  return response;
}

OriginResponse Thumbnails::make(const Job& job, const Lead& lead, WorkTimes& times) const {
  // The requests parked on this one get its answer, failures included.
  const auto fail = [&](const Status& status) {
    if (lead) lead->land(status);
    return failure(job, status);
  };
  if (job.deadline.passed()) {
    return fail({Code::kOverloaded, "the request waited too long for a worker"});
  }
  // Watermark images first: their versions are part of the thumbnail's validator.
  Result<Marks> marks =
      originals_.watermarks(transform::watermark_keys(job.spec.filters), job.deadline);
  if (!marks.ok()) return fail(marks.status());
  const std::string marks_digest = EntityTags::marks_digest(marks->versions);
  const EntityTags& etags = job.settings->etags;

  FetchConditions conditions;
  conditions.deadline = job.deadline;
  conditions.if_token_in =
      etags.source_tokens(job.conditions.if_none_match, job.transform, marks_digest);
  if (job.conditions.if_none_match.empty()) {
    conditions.if_modified_since = parse_http_date(job.conditions.if_modified_since);
  }

  // A revalidation asks the source first: an unchanged original is a 304 with no transform.
  std::shared_ptr<const FetchedOriginal> prefetched;
  if (!conditions.if_token_in.empty() || conditions.if_modified_since) {
    prefetched = std::make_shared<const FetchedOriginal>(
        FetchedOriginal::from(originals_.fetch(job.spec.image, conditions, &times)));
    if (!prefetched->object.ok()) return failure(job, prefetched->object.status());
    const SourceObject& checked = *prefetched->object;
    if (checked.not_modified) {
      OriginResponse response =
          not_modified_answer(etags.make(job.transform, checked.validators.token, marks_digest),
                              checked.validators.last_modified, job.vary_accept, job.spec.max_age,
                              job.settings->options.cache_control, clock_.wall_now());
      response.cache_outcome = "miss";
      return response;
    }
  }

  // The answer may have landed while this request waited for a worker.
  if (auto result = results_.get(job.cache_key)) {
    if (lead) lead->land(result);
    OriginResponse response = answer(job, std::move(result));
    response.cache_outcome = "hit";
    return response;
  }
  // Identical requests share one fetch and one transform: those parked on this one's flight
  // (park()), and those that reached a worker while it was in the air.
  const auto work = [&] { return produce(job, *marks, marks_digest, prefetched, times); };
  std::shared_ptr<const Produced> produced;
  if (lead) {
    produced = lead->fly(work);
  } else {
    auto flight = renders_.run(job.cache_key, job.deadline, work);
    if (!flight.value) {
      return failure(job,
                     {Code::kOverloaded, "the request waited too long for the same thumbnail"});
    }
    if (!flight.leader) return coalesced_answer(job, flight.value);
    produced = std::move(flight.value);
  }
  if (!produced->ok()) return failure(job, produced->status());
  OriginResponse response = answer(job, **produced);
  response.cache_outcome = "miss";
  return response;
}

void Thumbnails::keep(const Job& job,
                      const std::shared_ptr<const cache::CachedResult>& result) const {
  results_.put(
      job.cache_key, result,
      std::chrono::seconds(max_age_for(job.settings->options.cache_control, job.spec.max_age)));
}

Thumbnails::Produced Thumbnails::produce(const Job& job, const Marks& marks,
                                         const std::string& marks_digest,
                                         std::shared_ptr<const FetchedOriginal> original,
                                         WorkTimes& times) const {
  const bool storable = store_ != nullptr && (!job.unsafe || store_unsafe_);
  // The result's path in result storage: its canonical request path. Made here, on a worker and
  // only with storage configured: ThumbnailSpec::path() parses the URL once more.
  const std::string store_key =
      storable ? job.spec.path() + (job.negotiated
                                        ? "." + std::string(transform::format_name(*job.negotiated))
                                        : std::string())
               : std::string();
  // Another replica may have made it already: read it instead of fetching and transforming. Its
  // ETag names the transform, output settings included: one made with other settings (before a
  // change of quality, say) is made again and replaced.
  if (storable && !original) {
    if (std::shared_ptr<const cache::CachedResult> stored = store_->read(store_key);
        stored && job.settings->etags.issued_for(stored->etag, job.transform)) {
      ++store_hits_;
      keep(job, stored);
      return stored;
    }
  }
  if (!original) {
    const OriginOptions& options = job.settings->options;
    original = originals_.get(job.spec.image, job.deadline,
                              {.kept = std::chrono::seconds(options.original_cache.ttl_s),
                               .not_found = options.not_found_ttl()},
                              times);
  }
  if (!original->object.ok()) return original->object.status();
  const std::string etag =
      job.settings->etags.make(job.transform, original->object->validators.token, marks_digest);
  Produced made = render(job, marks, *original, etag, times);
  if (!made.ok()) return made;
  keep(job, *made);
  // A stored file's name says its format to nginx's try_files: an animation answered as WebP
  // where AVIF was negotiated is kept in memory only.
  const bool named_right =
      !job.negotiated || (*made)->content_type == transform::mime_type(*job.negotiated);
  if (storable && named_right) {
    // Written after the answer, never delaying it.
    auto write = [store = store_, key = store_key, result = *made] { store->write(key, *result); };
    if (defer_) {
      defer_(write);
    } else {
      write();
    }
  }
  return made;
}

Thumbnails::Produced Thumbnails::render(const Job& job, const Marks& marks,
                                        const FetchedOriginal& original, const std::string& etag,
                                        WorkTimes& times) const {
  const SourceObject& source = *original.object;
  const auto bytes =
      std::span(reinterpret_cast<const std::uint8_t*>(source.bytes.data()), source.bytes.size());
  transform::RenderRequest request;
  request.negotiated = job.negotiated;
  // One version of one original: its key and its validator.
  request.focal_cache = {&focal_memory_, job.spec.image + "@" + source.validators.token};
  request.watermarks = marks.sources;
  request.deadline = job.deadline;
  request.header = original.header;
  ++renders_count_;
  auto result = std::make_shared<cache::CachedResult>();
  const transform::RenderSettings& settings = job.settings->render;
  if (job.spec.meta) {
    // meta/: the JSON description, from the header alone.
    Result<std::string> json = transform::describe(bytes, job.spec, settings, request);
    if (!json.ok()) return json.status();
    result->body = std::move(json).value();
    result->content_type = "application/json";
  } else {
    Result<transform::Thumbnail> thumbnail = transform::render(bytes, job.spec, settings, request);
    if (!thumbnail.ok()) return thumbnail.status();
    result->body = std::move(thumbnail->bytes);
    result->content_type = std::string(transform::mime_type(thumbnail->format));
    times.stages = thumbnail->times;
    for (const std::string& note : thumbnail->notes) {
      log_line("warning", "original '" + job.spec.image + "': " + note);
    }
    if (metrics_) {
      const transform::StageTimes& t = thumbnail->times;
      metrics_->observe_stage(Stage::kSniff, t.sniff_ms / 1000);
      metrics_->observe_stage(Stage::kDecode, t.decode_ms / 1000);
      if (job.spec.smart) metrics_->observe_stage(Stage::kSmart, t.smart_ms / 1000);
      metrics_->observe_stage(Stage::kTransform, t.transform_ms / 1000);
      metrics_->observe_stage(Stage::kEncode, t.encode_ms / 1000);
    }
  }
  result->etag = etag;
  result->last_modified = source.validators.last_modified;
  result->vary_accept = job.vary_accept;
  result->url_max_age = job.spec.max_age;
  return std::shared_ptr<const cache::CachedResult>(std::move(result));
}

Thumbnails::Counters Thumbnails::counters() const {
  return {renders_count_.load(), coalesced_.load(), store_hits_.load()};
}

}  // namespace thimble::proxy
