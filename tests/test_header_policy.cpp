// proxy/header_policy: HTTP dates, Cache-Control, ETags, If-None-Match and Accept, as tables.
#include <doctest/doctest.h>

#include "proxy/common/header_policy.h"
#include "proxy/service/entity_tag.h"

using namespace thimble;
using namespace thimble::proxy;

TEST_CASE("HTTP dates are written and read in IMF-fixdate") {
  auto t = std::chrono::system_clock::from_time_t(784111777);
  CHECK(http_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == t);
  for (const char* bad : {"", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 UTC", "garbage garbage garbage garbage"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_http_date(bad).has_value());
  }
}

TEST_CASE(
    "Cache-Control carries max-age and, when configured, s-maxage and stale-while-revalidate") {
  conf::CacheControlConfig config;
  CHECK(cache_control_for_success(config, std::nullopt) == "public, max-age=86400");
  config.max_age = 3600;
  config.s_maxage = 604800;
  config.stale_while_revalidate = 60;
  CHECK(cache_control_for_success(config, std::nullopt) ==
        "public, max-age=3600, s-maxage=604800, stale-while-revalidate=60");
  // A URL's max_age() is the app's word for every cache: no s-maxage on top of it.
  CHECK(cache_control_for_success(config, 120) == "public, max-age=120, stale-while-revalidate=60");
  CHECK(max_age_for(config, 120) == 120);
  CHECK(max_age_for(config, std::nullopt) == 3600);
}

TEST_CASE("ETags join the transform hash and the source token, and can be read back") {
  std::string transform = transform_hash("fit-in/300x200|a.jpg|source|q80");
  CHECK(transform.size() == 16);
  CHECK(transform_hash("fit-in/300x200|a.jpg|source|q80") == transform);
  CHECK(transform_hash("fit-in/300x201|a.jpg|source|q80") != transform);
  const EntityTags tags({"MY_SECURE_KEY"});
  std::string etag = tags.make(transform, "17a-2f");
  CHECK(etag.starts_with("\"" + transform + "-17a-2f."));
  CHECK(etag.size() == 1 + 16 + 1 + 6 + 1 + 16 + 1);
  CHECK(tags.source_tokens(etag, transform) == std::vector<std::string>{"17a-2f"});
  CHECK(tags.source_tokens("W/" + etag + ", \"other-1\"", transform) ==
        std::vector<std::string>{"17a-2f"});
  CHECK(tags.source_tokens(etag, transform_hash("else")).empty());
  // The same keys make the same ETags (replicas agree); other keys do not read them.
  CHECK(EntityTags({"MY_SECURE_KEY"}).make(transform, "17a-2f") == etag);
  CHECK(EntityTags({"other"}).source_tokens(etag, transform).empty());
}

TEST_CASE("watermark versions are part of an ETag: a revalidation with other marks is no match") {
  const std::string transform = transform_hash("300x200/filters:watermark(m.png,0,0,0)|a.jpg");
  const EntityTags tags({"k"});
  const std::string marks = EntityTags::marks_digest("m.png=e123;");
  CHECK(marks.size() == 16);
  CHECK(EntityTags::marks_digest("").empty());
  const std::string etag = tags.make(transform, "17a-2f", marks);
  CHECK(etag.find("-17a-2f~" + marks + ".") != std::string::npos);
  CHECK(etag == tags.make(transform, "17a-2f~" + marks));  // one spelling of the format
  CHECK(tags.source_tokens(etag, transform, marks) == std::vector<std::string>{"17a-2f"});
  CHECK(tags.source_tokens(etag, transform, EntityTags::marks_digest("m.png=e124;")).empty());
  CHECK(tags.source_tokens(etag, transform).empty());  // made with marks, asked without
  CHECK(tags.source_tokens(tags.make(transform, "17a-2f"), transform, marks).empty());
  CHECK(tags.issued_for(etag, transform));
  CHECK_FALSE(tags.issued_for(etag, transform_hash("other")));
  CHECK_FALSE(EntityTags({"other-key"}).issued_for(etag, transform));
}

TEST_CASE("Only ETags Thimble issued give back a source token: forged or altered ones give none") {
  const std::string transform = transform_hash("300x200|a.jpg");
  const EntityTags tags({"new-key", "old-key"});
  const std::string issued = EntityTags({"old-key"}).make(transform, "eIjEi");
  // A rotated-out first key still verifies while it is configured.
  CHECK(tags.source_tokens(issued, transform) == std::vector<std::string>{"eIjEi"});
  const std::string mac = issued.substr(issued.size() - 17, 16);
  for (const std::string& forged : {
           "\"" + transform + "-eIjEi\"",                               // no MAC (the old format)
           "\"" + transform + "-eIjEj." + mac + "\"",                   // another token, same MAC
           "\"" + transform + "-eIjEi." + std::string(16, '0') + "\"",  // a guessed MAC
           "\"" + transform + "-." + mac + "\"",                        // an empty token
           "\"" + transform + "-eDQoNCkRFTEVURSAv." + mac + "\"",       // CR LF DELETE /
       }) {
    CAPTURE(forged);
    CHECK(tags.source_tokens(forged, transform).empty());
  }
}

TEST_CASE("If-None-Match uses weak comparison and understands lists and *") {
  const std::string etag = "\"abc-1\"";
  struct Row {
    const char* header;
    bool match;
  };
  const Row rows[] = {
      {"\"abc-1\"", true}, {"W/\"abc-1\"", true}, {"\"x\", \"abc-1\"", true},
      {"*", true},         {"\"abc-2\"", false},  {"", false},
      {"abc-1", false},    {"\"abc-1", false},    {"\"x\",W/\"abc-1\"", true},
  };
  for (const auto& row : rows) {
    CAPTURE(row.header);
    CHECK(if_none_match_matches(row.header, etag) == row.match);
  }
}

TEST_CASE("WebP is chosen only when Accept names it without q=0") {
  struct Row {
    const char* accept;
    bool webp;
  };
  const Row rows[] = {
      {"image/avif,image/webp,image/apng,image/*,*/*;q=0.8", true},
      {"image/webp", true},
      {"image/webp;q=0.5", true},
      {"image/webp;q=0", false},
      {"image/webp;q=0.0, image/jpeg", false},
      {"*/*", false},
      {"image/*", false},
      {"", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.accept);
    CHECK(accepts_type(row.accept, "image/webp") == row.webp);
  }
}
