#include "core/json.h"

#include <gtest/gtest.h>

namespace agora::json {
namespace {

TEST(ParseObject, RefusesMalformedJson) {
  auto r = ParseObject("{\"a\":");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().type, "malformed-json");
}

TEST(ParseObject, RefusesNonObjects) {
  EXPECT_FALSE(ParseObject("[1,2]").ok());
  EXPECT_FALSE(ParseObject("\"s\"").ok());
  EXPECT_FALSE(ParseObject("").ok());
}

TEST(ParseObject, RefusesInvalidUtf8) { EXPECT_FALSE(ParseObject("{\"a\":\"\xff\xfe\"}").ok()); }

TEST(ParseObject, RefusesDeepNesting) {
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_FALSE(ParseObject(deep).ok());
}

TEST(FieldReader, ReadsTypedFields) {
  auto obj = ParseObject(R"({"name":"Ada","age":36,"admin":false})").value();
  FieldReader r(obj);
  EXPECT_EQ(r.String("name", true, 1, 10).value(), "Ada");
  EXPECT_EQ(r.Int("age", true, 0, 200).value(), 36);
  EXPECT_EQ(r.Bool("admin", false).value(), false);
  EXPECT_TRUE(r.Finish().ok());
}

TEST(FieldReader, CollectsEveryProblemWithFieldNames) {
  auto obj = ParseObject(R"({"name":5,"age":"x","roles":["admin"]})").value();
  FieldReader r(obj);
  r.String("name", true, 1, 10);
  r.Int("age", true, 0, 200);
  r.String("email", true, 3, 254);
  Status s = r.Finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const auto& f : s.error().fields) fields.push_back(f.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"name", "age", "email", "roles"}));
}

TEST(FieldReader, LengthCountsCodePoints) {
  auto obj = ParseObject(R"({"n":"ééé"})").value();
  FieldReader r(obj);
  EXPECT_EQ(r.String("n", true, 3, 3).value(), "ééé");
  EXPECT_TRUE(r.Finish().ok());
}

TEST(FieldReader, RefusesControlCharacters) {
  auto obj = ParseObject(R"({"n":"a\u0000b"})").value();
  FieldReader r(obj);
  EXPECT_FALSE(r.String("n", true, 1, 10));
  EXPECT_FALSE(r.Finish().ok());
}

TEST(FieldReader, IntegerRangeAndFractions) {
  auto obj = ParseObject(R"({"a":1.5,"b":-1,"c":18446744073709551615})").value();
  FieldReader r(obj);
  EXPECT_FALSE(r.Int("a", true, 0, 10));
  EXPECT_FALSE(r.Int("b", true, 0, 10));
  EXPECT_FALSE(r.Int("c", true, 0, 10));
  EXPECT_EQ(r.Finish().error().fields.size(), 3u);
}

TEST(FieldReader, NullCountsAsAbsent) {
  auto obj = ParseObject(R"({"a":null})").value();
  FieldReader r(obj);
  EXPECT_FALSE(r.String("a", false, 0, 10));
  EXPECT_TRUE(r.Finish().ok());
}

}  // namespace
}  // namespace agora::json
