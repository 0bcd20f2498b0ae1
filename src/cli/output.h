// Human and machine output for `oc`.
//
// Tables: a header row in capitals and columns padded to the widest cell,
// two spaces apart; the last column is not padded. Cells pass through
// TerminalSafe so server-provided text cannot inject terminal escapes.
// JSON: the API's JSON, pretty-printed, one document per command.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace osb::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "key: value" lines with the values aligned.
void PrintFields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields);

void PrintJson(std::ostream& out, const nlohmann::json& doc);

// A JSON field for a table cell: strings as-is, numbers and booleans as
// text, arrays joined with ",", missing / null / empty -> "-".
std::string Cell(const nlohmann::json& object, const char* field);

// Replaces control characters (except none) with '?'.
std::string TerminalSafe(std::string text);

// List endpoints answer an array; tolerate {"<anything>": [...]} wrappers
// with exactly one array member. Anything else -> empty array.
nlohmann::json ListItems(const nlohmann::json& doc);

}  // namespace osb::cli
