// proxy/http/request_parser: strict HTTP/1.1 request heads, as a table of what is read and what
// is refused (RFC 9112), and pipelined requests read one after the other.
#include <doctest/doctest.h>

#include "proxy/http/request_parser.h"

using namespace thimble::proxy::http;
using State = ParseOutcome::State;

namespace {

ParseOutcome parse(const std::string& input) {
  return parse_request(input, ParseLimits{});
}

}  // namespace

TEST_CASE("a request head is read with its headers, and what follows it is left for the next") {
  const std::string two =
      "GET /a/b.jpg?x=1 HTTP/1.1\r\nHost: h\r\nAccept: image/webp\r\nIf-None-Match: \"a\"\r\n"
      "If-None-Match: \"b\"\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n";
  ParseOutcome first = parse(two);
  REQUIRE(first.state == State::kComplete);
  CHECK(first.head.method == "GET");
  CHECK(first.head.target == "/a/b.jpg?x=1");
  CHECK(first.head.minor_version == 1);
  CHECK(first.head.keep_alive);
  CHECK(first.head.header("accept") == "image/webp");
  CHECK(first.head.header("if-none-match") == "\"a\", \"b\"");
  CHECK(first.head.header("absent").empty());
  ParseOutcome second = parse(two.substr(first.consumed));
  REQUIRE(second.state == State::kComplete);
  CHECK(second.head.target == "/second");
  CHECK(second.consumed == two.size() - first.consumed);
}

TEST_CASE("keep-alive follows the version and the Connection header") {
  struct Row {
    const char* request;
    bool keep_alive;
  };
  const Row rows[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
  };
  for (const Row& row : rows) {
    CAPTURE(row.request);
    ParseOutcome outcome = parse(row.request);
    REQUIRE(outcome.state == State::kComplete);
    CHECK(outcome.head.keep_alive == row.keep_alive);
  }
}

TEST_CASE("requests a lax front end could read two ways are refused at once, never waited for") {
  struct Row {
    std::string request;
    int status;
  };
  const Row rows[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\nHost: h\n\n", 400},                     // bare LF, before the end
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},         // bare CR
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400},  // a control character
      {std::string("GET /a") + '\0' + "b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"GET relative HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400},
      {": no name\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999\r\n\r\n", 413},
      {"GET / HTTP/1.1\r\nHost: " + std::string(20000, 'h') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: " + std::string(20000, 'h'), 431},  // not even complete
  };
  for (const Row& row : rows) {
    CAPTURE(row.request.substr(0, 60));
    ParseOutcome outcome = parse(row.request);
    CHECK(outcome.state == State::kRefused);
    CHECK(outcome.status == row.status);
    CHECK_FALSE(outcome.reason.empty());
  }
}

TEST_CASE("an unfinished request is waited for, and a body is read and skipped") {
  CHECK(parse("").state == State::kIncomplete);
  CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\n").state == State::kIncomplete);
  CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\n\r").state == State::kIncomplete);
  CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab").state ==
        State::kIncomplete);
  const std::string with_body = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcdGET";
  ParseOutcome outcome = parse(with_body);
  REQUIRE(outcome.state == State::kComplete);
  CHECK(with_body.substr(outcome.consumed) == "GET");
  // Empty lines before a request are skipped (RFC 9112 §2.2).
  CHECK(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").state == State::kComplete);
  // absolute-form is read as its path; obs-text in a target or a value is taken as it is.
  ParseOutcome absolute = parse("GET http://host:80/p/q.jpg HTTP/1.1\r\nHost: host\r\n\r\n");
  REQUIRE(absolute.state == State::kComplete);
  CHECK(absolute.head.target == "/p/q.jpg");
  CHECK(parse("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\nX: \xff\r\n\r\n").state == State::kComplete);
}
