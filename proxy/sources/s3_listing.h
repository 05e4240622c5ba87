// One page of an S3 ListObjectsV2 answer, read as Thimble needs it: each object's key and size,
// whether more pages follow and the token that asks for the next. The XML comes from the
// network and may be hostile: the reader only looks for the few elements it needs, decodes the
// five named entities and numeric references (S3 writes control characters in keys that way),
// and refuses what it cannot read rather than guess. Linear in the page's size.
//
// Internal to proxy/sources/. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thimble::proxy {

struct ListedObject {
  std::string key;  // decoded
  std::uint64_t size = 0;
};

struct ListingPage {
  std::vector<ListedObject> objects;
  bool truncated = false;           // <IsTruncated>true</IsTruncated>
  std::optional<std::string> next;  // <NextContinuationToken>, when there is one
};

// nullopt when an object's <Key> is missing or damaged.
std::optional<ListingPage> parse_listing_page(std::string_view xml);

// The text of the first <name>…</name> in `xml`, entities decoded; nullopt when there is none
// or it is damaged.
std::optional<std::string> xml_element(std::string_view xml, std::string_view name);

}  // namespace thimble::proxy
