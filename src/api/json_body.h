// Strict reading of JSON request bodies: malformed JSON, a non-object body,
// unknown fields and wrong types are 400s naming the field. JSON null counts
// as "absent". Never echoes field values (they may be secrets). Every string
// in a parsed body is wiped when the JsonBody goes away (a PUT of a secret
// carries its value); so are the strings of a body refused as invalid.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"
#include "common/result.h"

namespace osb::api {

class JsonBody {
 public:
  static Result<JsonBody> Parse(const std::string& body, std::initializer_list<const char*> known_fields);
  ~JsonBody();
  JsonBody(JsonBody&&) noexcept = default;
  JsonBody& operator=(JsonBody&&) noexcept = default;
  JsonBody(const JsonBody&) = delete;
  JsonBody& operator=(const JsonBody&) = delete;

  Result<std::optional<std::string>> String(const char* field) const;
  Result<std::optional<int>> Int(const char* field) const;
  Result<std::optional<std::vector<std::string>>> StringList(const char* field) const;
  Result<std::optional<std::map<std::string, std::string>>> StringMap(const char* field) const;
  // A nested JSON object / array, re-serialized (e.g. a secret's material:
  // the caller wipes the returned text).
  Result<std::optional<std::string>> ObjectText(const char* field) const;
  Result<std::optional<std::string>> ArrayText(const char* field) const;

 private:
  explicit JsonBody(nlohmann::json j) : j_(std::move(j)) {}
  const nlohmann::json* Find(const char* field) const;
  nlohmann::json j_;
};

// Overwrites every string value in j with zeros (before it is freed).
void WipeJsonStrings(nlohmann::json& j);

// Serialises for a response (invalid UTF-8 replaced, never throws).
std::string Dump(const nlohmann::json& j);

// A JSON response with `status`, and the empty 204.
Response JsonResponse(int status, const nlohmann::json& j);
Response NoContent();

}  // namespace osb::api
