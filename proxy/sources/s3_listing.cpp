#include "proxy/sources/s3_listing.h"

#include <cstdlib>
#include <exception>

namespace thimble::proxy {

std::optional<std::string> xml_element(std::string_view xml, std::string_view name) {
  const std::string open = "<" + std::string(name) + ">";
  const std::string close = "</" + std::string(name) + ">";
  const std::size_t start = xml.find(open);
  if (start == std::string_view::npos) return std::nullopt;
  const std::size_t stop = xml.find(close, start + open.size());
  if (stop == std::string_view::npos) return std::nullopt;
  const std::string_view raw = xml.substr(start + open.size(), stop - start - open.size());
  std::string text;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      text += raw[i];
      continue;
    }
    const std::size_t semi = raw.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    const std::string_view entity = raw.substr(i + 1, semi - i - 1);
    if (entity == "amp")
      text += '&';
    else if (entity == "lt")
      text += '<';
    else if (entity == "gt")
      text += '>';
    else if (entity == "quot")
      text += '"';
    else if (entity == "apos")
      text += '\'';
    else if (entity.size() > 1 && entity[0] == '#') {
      // Numeric references: S3 writes control characters of keys this way.
      unsigned long code = 0;
      try {
        code = entity[1] == 'x' ? std::stoul(std::string(entity.substr(2)), nullptr, 16)
                                : std::stoul(std::string(entity.substr(1)));
      } catch (const std::exception&) {
        return std::nullopt;
      }
      if (code == 0 || code > 0x10FFFF) return std::nullopt;
      if (code < 0x80) {
        text += static_cast<char>(code);
      } else if (code < 0x800) {
        text += static_cast<char>(0xC0 | (code >> 6));
        text += static_cast<char>(0x80 | (code & 0x3F));
      } else if (code < 0x10000) {
        text += static_cast<char>(0xE0 | (code >> 12));
        text += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (code & 0x3F));
      } else {
        text += static_cast<char>(0xF0 | (code >> 18));
        text += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        text += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (code & 0x3F));
      }
    } else {
      return std::nullopt;
    }
    i = semi;
  }
  return text;
}

std::optional<ListingPage> parse_listing_page(std::string_view xml) {
  ListingPage page;
  std::size_t at = 0;
  while (true) {
    const std::size_t open = xml.find("<Contents>", at);
    if (open == std::string_view::npos) break;
    const std::size_t close = xml.find("</Contents>", open);
    if (close == std::string_view::npos) break;
    at = close;
    const std::string_view raw = xml.substr(open, close - open);
    std::optional<std::string> key = xml_element(raw, "Key");
    if (!key) return std::nullopt;
    ListedObject object{std::move(*key), 0};
    if (std::optional<std::string> size = xml_element(raw, "Size")) {
      object.size = std::strtoull(size->c_str(), nullptr, 10);
    }
    page.objects.push_back(std::move(object));
  }
  page.truncated = xml_element(xml, "IsTruncated").value_or("false") == "true";
  page.next = xml_element(xml, "NextContinuationToken");
  return page;
}

}  // namespace thimble::proxy
