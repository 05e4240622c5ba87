// proxy/status_table: every error code's HTTP status and cache policy, row by row.
#include <doctest/doctest.h>

#include "proxy/service/status_table.h"

using namespace thimble;
using namespace thimble::proxy;

TEST_CASE("the status table maps every error code to its HTTP status and cache policy") {
  struct Row {
    Code code;
    int status;
    ErrorCaching caching;
  };
  const Row rows[] = {
      {Code::kBadSignature, 403, ErrorCaching::kShort},
      {Code::kBadRequest, 400, ErrorCaching::kShort},
      {Code::kNotFound, 404, ErrorCaching::kShort},
      {Code::kMethodNotAllowed, 405, ErrorCaching::kShort},
      {Code::kUriTooLong, 414, ErrorCaching::kShort},
      {Code::kHeadersTooLarge, 431, ErrorCaching::kNoStore},
      {Code::kMalformedHttp, 400, ErrorCaching::kNoStore},
      {Code::kRequestTooLarge, 413, ErrorCaching::kNoStore},
      {Code::kRequestTimeout, 408, ErrorCaching::kNoStore},
      {Code::kHttpVersion, 505, ErrorCaching::kNoStore},
      {Code::kSourceForbidden, 403, ErrorCaching::kShort},
      {Code::kTooLarge, 413, ErrorCaching::kShort},
      {Code::kUnsupportedMedia, 415, ErrorCaching::kShort},
      {Code::kUpstreamError, 502, ErrorCaching::kNoStore},
      {Code::kUpstreamTimeout, 504, ErrorCaching::kNoStore},
      {Code::kOverloaded, 503, ErrorCaching::kNoStore},
      {Code::kInternal, 500, ErrorCaching::kNoStore},
  };
  for (const auto& row : rows) {
    CAPTURE(row.status);
    CHECK(code_info(row.code).http_status == row.status);
    CHECK(code_info(row.code).caching == row.caching);
    CHECK(http_status(Status(row.code, "x")) == row.status);
  }
  CHECK(Status::Ok().ok());
}
