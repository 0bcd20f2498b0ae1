#include "cli/output.h"

#include <algorithm>

namespace osb::cli {

namespace {
// Display width in code points (UTF-8 continuation bytes do not count).
size_t Width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}
}  // namespace

std::string TerminalSafe(std::string text) {
  for (char& c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return text;
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(TerminalSafe(row[i])));
    }
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < row.size() ? TerminalSafe(row[i]) : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - Width(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

void PrintFields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size());
  for (const auto& [key, value] : fields) {
    out << key << ":" << std::string(width - key.size() + 1, ' ') << TerminalSafe(value) << "\n";
  }
}

void PrintJson(std::ostream& out, const nlohmann::json& doc) {
  out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

std::string Cell(const nlohmann::json& object, const char* field) {
  if (!object.is_object()) return "-";
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
  if (it->is_array()) {
    std::string joined;
    for (const auto& item : *it) {
      if (!joined.empty()) joined += ",";
      joined += item.is_string() ? item.get<std::string>() : item.dump();
    }
    return joined.empty() ? "-" : joined;
  }
  return it->dump();
}

nlohmann::json ListItems(const nlohmann::json& doc) {
  if (doc.is_array()) return doc;
  if (doc.is_object()) {
    const nlohmann::json* found = nullptr;
    for (const auto& [key, value] : doc.items()) {
      if (value.is_array()) {
        if (found != nullptr) return nlohmann::json::array();
        found = &value;
      }
    }
    if (found != nullptr) return *found;
  }
  return nlohmann::json::array();
}

}  // namespace osb::cli
