#include "cli/output.h"

#include <gtest/gtest.h>

#include <sstream>

namespace osb::cli {
namespace {

TEST(Table, AlignsColumnsAndTrimsTrailingSpace) {
  Table t({"NAME", "ID", "X"});
  t.AddRow({"a-long-name", "1", ""});
  t.AddRow({"b", "22", "z"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "NAME         ID  X\n"
            "a-long-name  1\n"
            "b            22  z\n");
}

TEST(Table, CountsUtf8CodePointsAndNeutralisesControlCharacters) {
  Table t({"N", "V"});
  t.AddRow({"\xc3\xa9t\xc3\xa9", "1"});
  t.AddRow({"a\x1b[31m", "2"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "N       V\n"
            "\xc3\xa9t\xc3\xa9     1\n"
            "a?[31m  2\n");
}

TEST(Cell, FormatsJsonValues) {
  nlohmann::json o = {{"s", "x"}, {"n", 3}, {"a", {"h1", "h2"}}, {"e", nlohmann::json::array()},
                      {"z", nullptr}, {"b", true}, {"empty", ""}};
  EXPECT_EQ(Cell(o, "s"), "x");
  EXPECT_EQ(Cell(o, "n"), "3");
  EXPECT_EQ(Cell(o, "a"), "h1,h2");
  EXPECT_EQ(Cell(o, "e"), "-");
  EXPECT_EQ(Cell(o, "z"), "-");
  EXPECT_EQ(Cell(o, "missing"), "-");
  EXPECT_EQ(Cell(o, "b"), "true");
  EXPECT_EQ(Cell(o, "empty"), "-");
  EXPECT_EQ(Cell(nlohmann::json::array(), "x"), "-");
}

TEST(ListItems, AcceptsArraysAndSingleArrayWrappers) {
  auto arr = nlohmann::json::array({1, 2});
  EXPECT_EQ(ListItems(arr), arr);
  EXPECT_EQ(ListItems({{"projects", arr}, {"count", 2}}), arr);
  EXPECT_TRUE(ListItems({{"a", arr}, {"b", arr}}).empty());
  EXPECT_TRUE(ListItems("x").empty());
}

TEST(PrintFields, AlignsValues) {
  std::ostringstream out;
  PrintFields(out, {{"id", "1"}, {"name", "n"}});
  EXPECT_EQ(out.str(), "id:   1\nname: n\n");
}

}  // namespace
}  // namespace osb::cli
