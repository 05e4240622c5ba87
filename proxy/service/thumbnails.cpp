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

bool Thumbnails::due_for_check(const Job& job, const cache::CachedResult& result) const {
  return clock_.wall_now() - result.checked_at >= job.settings->options.revalidate;
}

std::optional<OriginResponse> Thumbnails::cached(const Job& job) const {
  std::shared_ptr<const cache::CachedResult> result = results_.get(job.cache_key);
  // One whose original is due a check is answered on a worker, after the check.
  if (!result || due_for_check(job, *result)) return std::nullopt;
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
  std::shared_ptr<const cache::CachedResult> held = results_.get(job.cache_key);
  if (held && !due_for_check(job, *held)) {
    if (lead) lead->land(held);
    OriginResponse response = answer(job, std::move(held));
    response.cache_outcome = "hit";
    return response;
  }
  // Identical requests share one fetch and one transform: those parked on this one's flight
  // (park()), and those that reached a worker while it was in the air.
  bool stored = false;  // answered from result storage
  const auto work = [&] {
    return produce(job, *marks, marks_digest, prefetched, std::move(held), times, stored);
  };
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
  response.cache_outcome = stored ? "stored" : "miss";
  return response;
}

void Thumbnails::keep(const Job& job,
                      const std::shared_ptr<const cache::CachedResult>& result) const {
  results_.put(
      job.cache_key, result,
      std::chrono::seconds(max_age_for(job.settings->options.cache_control, job.spec.max_age)));
}

std::string Thumbnails::store_key(const Job& job) {
  // Made on a worker and only with storage configured: ThumbnailSpec::path() parses the URL
  // once more.
  return job.spec.path() + (job.negotiated
                                ? "." + std::string(transform::format_name(*job.negotiated))
                                : std::string());
}

Thumbnails::Produced Thumbnails::produce(const Job& job, const Marks& marks,
                                         const std::string& marks_digest,
                                         std::shared_ptr<const FetchedOriginal> original,
                                         std::shared_ptr<const cache::CachedResult> held,
                                         WorkTimes& times, bool& stored) const {
  const bool storable = store_ != nullptr && (!job.unsafe || store_unsafe_);
  // The result's path in result storage: its canonical request path.
  const std::string stored_as = storable ? store_key(job) : std::string();
  const OriginOptions& options = job.settings->options;
  const Originals::Lifetimes lifetimes{.kept = std::chrono::seconds(options.original_cache.ttl_s),
                                       .not_found = options.not_found_ttl()};
  bool from_store = false;
  // Another replica may have made it already: read it instead of fetching and transforming. Its
  // ETag names the transform, output settings included: one made with other settings (before a
  // change of quality, say) is made again and replaced.
  if (storable && !original && !held) {
    if (std::shared_ptr<const cache::CachedResult> read = store_->read(stored_as);
        read && job.settings->etags.issued_for(read->etag, job.transform)) {
      held = std::move(read);
      from_store = true;
    }
  }
  // A result held (in memory or in storage) is served while its original was checked less than
  // result_storage.revalidate_s ago; older, the source is asked whether it changed.
  if (held && !original) {
    const auto served = [&](std::shared_ptr<const cache::CachedResult> result) -> Produced {
      if (from_store) ++store_hits_;
      stored = from_store;
      keep(job, result);
      return result;
    };
    if (!due_for_check(job, *held)) return served(std::move(held));
    ++checks_;
    std::shared_ptr<const FetchedOriginal> checked = originals_.check(
        job.spec.image, job.settings->etags.source_tokens(held->etag, job.transform, marks_digest),
        job.deadline, lifetimes, times);
    const auto refreshed = [&] {
      auto copy = std::make_shared<cache::CachedResult>(*held);
      copy->checked_at = clock_.wall_now();
      return std::shared_ptr<const cache::CachedResult>(std::move(copy));
    };
    if (checked->object.ok() && checked->object->not_modified) return served(refreshed());
    if (!checked->object.ok()) {
      const Status& failed = checked->object.status();
      if (failed.code() == Code::kNotFound) {
        // The original is gone: so are its thumbnails, here and in storage.
        results_.erase(job.cache_key);
        if (storable) forget(job.spec.image);
        return failed;
      }
      if (failed.code() == Code::kSourceForbidden || failed.code() == Code::kBadRequest) {
        results_.erase(job.cache_key);
        return failed;
      }
      // The source is failing (5xx, timeout, overloaded): the result it last confirmed is served,
      // and asked about again after another revalidate_s.
      log_line("warning", "original '" + job.spec.image + "' could not be checked (" +
                              failed.message() + "): serving the result made before");
      return served(refreshed());
    }
    original = std::move(checked);  // changed: made again from the new version below
  }
  if (!original) original = originals_.get(job.spec.image, job.deadline, lifetimes, times);
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
    later([store = store_, key = stored_as, image = job.spec.image, result = *made] {
      store->write(key, image, *result);
    });
  }
  return made;
}

void Thumbnails::later(std::function<void()> task) const {
  if (defer_) {
    defer_(std::move(task));
  } else {
    task();
  }
}

void Thumbnails::forget(const std::string& image) const {
  later([store = store_, image] {
    const cache::PurgeCounts removed = store->purge(image, false);
    if (removed.variants > 0) {
      log_line("info", "original '" + image + "' is gone: removed its " +
                           std::to_string(removed.variants) + " stored thumbnails");
    }
  });
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
  result->checked_at = clock_.wall_now();
  return std::shared_ptr<const cache::CachedResult>(std::move(result));
}

Thumbnails::Counters Thumbnails::counters() const {
  return {renders_count_.load(), coalesced_.load(), store_hits_.load(), checks_.load()};
}

}  // namespace thimble::proxy
