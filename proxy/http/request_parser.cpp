#include "proxy/http/request_parser.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace thimble::proxy::http {
namespace {

using State = ParseOutcome::State;

ParseOutcome refused(int status, std::string reason) {
  ParseOutcome outcome;
  outcome.state = State::kRefused;
  outcome.status = status;
  outcome.reason = std::move(reason);
  return outcome;
}

// tchar (RFC 9110 §5.6.2)
bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}
// field-vchar, SP, HTAB (obs-text included); never a control character.
bool is_field_value_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Calls `each` with every trimmed element of a comma-separated list.
template <typename Each>
void for_each_element(std::string_view list, Each each) {
  while (true) {
    const std::size_t comma = list.find(',');
    each(trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// `method SP request-target SP HTTP-version` (RFC 9112 §3), filling `head`; a refusal otherwise.
std::optional<ParseOutcome> read_request_line(std::string_view line, RequestHead& head) {
  const std::size_t first = line.find(' ');
  const std::size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    return refused(400, "the request line is not `METHOD TARGET HTTP/1.1`");
  }
  const std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  const std::string_view version = line.substr(second + 1);
  if (!is_token(method)) return refused(400, "the request method is not a token");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x20 && byte != 0x7f;
      })) {
    return refused(400, "the request target holds spaces or control characters");
  }
  if (version.size() != 8 || !version.starts_with("HTTP/") ||
      !std::isdigit(static_cast<unsigned char>(version[5])) || version[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return refused(400, "the request line has no valid HTTP version");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return refused(505, "versions other than HTTP/1.0 and 1.1 are not served");
  }
  head.minor_version = version[7] - '0';
  // absolute-form (RFC 9112 §3.2.2) is read as the path it names.
  const std::string scheme = lower(target.substr(0, std::min<std::size_t>(target.size(), 8)));
  if (scheme.starts_with("http://") || scheme.starts_with("https://")) {
    const std::size_t authority = target.find("//") + 2;
    const std::size_t path = target.find_first_of("/?", authority);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
    if (target.front() == '?') return refused(400, "the request target has no path");
  } else if (target.front() != '/' && target != "*") {
    return refused(400, "the request target must be a path");
  }
  head.method = std::string(method);
  head.target = std::string(target);
  return std::nullopt;
}

}  // namespace

std::string RequestHead::header(std::string_view lower_case_name) const {
  std::string out;
  for (const auto& [name, value] : headers) {
    if (name != lower_case_name) continue;
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

ParseOutcome parse_request(std::string_view input, const ParseLimits& limits) {
  std::size_t start = 0;
  while (input.substr(start, 2) == "\r\n") start += 2;  // empty lines before a request
  RequestHead head;
  std::size_t pos = start;
  std::size_t hosts = 0;
  bool transfer_encoding = false;
  std::vector<std::string_view> lengths;
  for (bool first = true;; first = false) {
    const std::size_t eol = input.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      // No complete line yet: what there is may already be refused.
      const std::string_view rest = input.substr(pos);
      const std::size_t cr = rest.find('\r');
      if (rest.find('\n') != std::string_view::npos) {
        return refused(400, "a line ends in a bare LF (lines end in CR LF)");
      }
      if (cr != std::string_view::npos && cr + 1 < rest.size()) {
        return refused(400, "a bare CR in the request head");
      }
      if (input.size() - start > limits.max_head_bytes) {
        return refused(431, "the request line and headers are over server.max_request_bytes");
      }
      return {};
    }
    if (eol + 2 - start > limits.max_head_bytes) {
      return refused(431, "the request line and headers are over server.max_request_bytes");
    }
    const std::string_view line = input.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.find_first_of(std::string_view("\r\n", 2)) != std::string_view::npos) {
      return refused(400, "a line ends in a bare LF or CR (lines end in CR LF)");
    }
    if (first) {
      if (auto refusal = read_request_line(line, head)) return *refusal;
      continue;
    }
    if (line.empty()) break;  // the end of the head
    if (line.front() == ' ' || line.front() == '\t') {
      return refused(400, "obsolete line folding in a header");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return refused(400, "a header field name is not a token followed by ':'");
    }
    const std::string_view value = trim(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_value_char)) {
      return refused(400, "a header value holds control characters");
    }
    if (head.headers.size() >= limits.max_headers) {
      return refused(431, "too many header fields");
    }
    std::string name = lower(line.substr(0, colon));
    if (name == "host") ++hosts;
    if (name == "transfer-encoding") transfer_encoding = true;
    if (name == "content-length") lengths.push_back(value);
    head.headers.emplace_back(std::move(name), std::string(value));
  }

  if (head.minor_version == 1 && hosts != 1) {
    return refused(400, "an HTTP/1.1 request needs exactly one Host header");
  }
  if (hosts > 1) return refused(400, "more than one Host header");
  if (transfer_encoding) {
    return refused(400, "Transfer-Encoding is not accepted on requests to this server");
  }
  // Content-Length: digits only; repeated (or listed) values must all agree (RFC 9110 §8.6).
  std::optional<std::string_view> length;
  bool valid = true;
  for (const std::string_view field : lengths) {
    for_each_element(field, [&](std::string_view element) {
      if (element.empty() || element.size() > 15 ||
          !std::all_of(element.begin(), element.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        valid = false;
      } else if (length && *length != element) {
        valid = false;
      } else {
        length = element;
      }
    });
  }
  if (!valid) return refused(400, "Content-Length is not one number");
  const std::size_t body = length ? std::stoull(std::string(*length)) : 0;
  if (body > limits.max_body_bytes) return refused(413, "the request body is too large");
  if (input.size() - pos < body) return {};

  bool close = false, keep_alive = false;
  for_each_element(head.header("connection"), [&](std::string_view option) {
    const std::string token = lower(option);
    close = close || token == "close";
    keep_alive = keep_alive || token == "keep-alive";
  });
  head.keep_alive = !close && (head.minor_version == 1 || keep_alive);

  ParseOutcome outcome;
  outcome.state = State::kComplete;
  outcome.head = std::move(head);
  outcome.consumed = pos + body;
  return outcome;
}

}  // namespace thimble::proxy::http
