#include "api/json_body.h"

#include <limits>

#include "common/secure_memory.h"

namespace osb::api {
namespace {

Error TypeError(const char* field, const char* expected) {
  return MakeError(ErrorCode::kInvalidArgument, std::string(field) + ": must be " + expected);
}

}  // namespace

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void WipeJsonStrings(nlohmann::json& j) {
  // Iterative: a body may nest arrays as deep as the parser allows.
  std::vector<nlohmann::json*> todo{&j};
  while (!todo.empty()) {
    nlohmann::json* v = todo.back();
    todo.pop_back();
    if (v->is_string()) {
      SecureWipe(v->get_ref<std::string&>());
    } else if (v->is_array() || v->is_object()) {
      for (auto& e : *v) todo.push_back(&e);  // object keys are names, not values
    }
  }
}

JsonBody::~JsonBody() { WipeJsonStrings(j_); }

Result<JsonBody> JsonBody::Parse(const std::string& body, std::initializer_list<const char*> known) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  struct WipeUnlessMoved {
    nlohmann::json& j;
    ~WipeUnlessMoved() { WipeJsonStrings(j); }  // a moved-from json is null: nothing to do
  } wipe{j};
  if (j.is_discarded()) {
    return MakeError(ErrorCode::kInvalidArgument, body.empty() ? "request body: a JSON object is required"
                                                               : "request body: malformed JSON");
  }
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "request body: must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) {
      std::string shown = key.substr(0, 64);
      for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      }
      return MakeError(ErrorCode::kInvalidArgument, "unknown field '" + shown + "'");
    }
  }
  return JsonBody(std::move(j));
}

const nlohmann::json* JsonBody::Find(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> JsonBody::String(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return TypeError(field, "a string");
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<int>> JsonBody::Int(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<int>();
  if (v->is_number_integer()) {
    // Out-of-int values are clamped so the range check names the field.
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      return std::optional<int>(u > static_cast<uint64_t>(std::numeric_limits<int>::max())
                                    ? std::numeric_limits<int>::max()
                                    : static_cast<int>(u));
    }
    const auto i = v->get<int64_t>();
    if (i > std::numeric_limits<int>::max()) return std::optional<int>(std::numeric_limits<int>::max());
    if (i < std::numeric_limits<int>::min()) return std::optional<int>(std::numeric_limits<int>::min());
    return std::optional<int>(static_cast<int>(i));
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -2e9 && d < 2e9) {
      return std::optional<int>(static_cast<int>(d));  // 2.0 is an integer
    }
  }
  return TypeError(field, "an integer");
}

Result<std::optional<std::vector<std::string>>> JsonBody::StringList(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<std::vector<std::string>>();
  if (!v->is_array()) return TypeError(field, "an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string()) return TypeError(field, "an array of strings");
    out.push_back(item.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<std::string>> JsonBody::ObjectText(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<std::string>();
  if (!v->is_object()) return TypeError(field, "a JSON object");
  return std::optional<std::string>(v->dump());
}

Result<std::optional<std::string>> JsonBody::ArrayText(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<std::string>();
  if (!v->is_array()) return TypeError(field, "a JSON array");
  return std::optional<std::string>(v->dump());
}

Result<std::optional<std::map<std::string, std::string>>> JsonBody::StringMap(const char* field) const {
  const auto* v = Find(field);
  if (!v) return std::optional<std::map<std::string, std::string>>();
  if (!v->is_object()) return TypeError(field, "an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, item] : v->items()) {
    if (!item.is_string()) return TypeError(field, "an object of strings");
    out[k] = item.get<std::string>();
  }
  return std::optional<std::map<std::string, std::string>>(std::move(out));
}

Response JsonResponse(int status, const nlohmann::json& j) {
  Response r;
  r.status = status;
  r.body = Dump(j);
  return r;
}

Response NoContent() {
  Response r;
  r.status = 204;
  return r;
}

}  // namespace osb::api
