#include "core/http/message.h"

#include <gtest/gtest.h>

namespace agora::http {
namespace {

TEST(Headers, LookupIsCaseInsensitive) {
  Headers h;
  h.Add("Content-Type", "application/json");
  EXPECT_EQ(h.Get("content-type").value_or(""), "application/json");
  h.Set("CONTENT-TYPE", "text/plain");
  EXPECT_EQ(h.items().size(), 1u);
  EXPECT_EQ(h.Get("Content-Type").value_or(""), "text/plain");
}

TEST(PercentDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(PercentDecode("a%20b+c", true).value(), "a b c");
  EXPECT_EQ(PercentDecode("a+b", false).value(), "a+b");
}

TEST(PercentDecode, RefusesMalformedEscapes) {
  EXPECT_FALSE(PercentDecode("%", false));
  EXPECT_FALSE(PercentDecode("%4", false));
  EXPECT_FALSE(PercentDecode("%zz", false));
}

TEST(Request, QueryParamDecodesAndFindsFirst) {
  Request r;
  r.query = "q=red+shoes&limit=20&q=other&flag";
  EXPECT_EQ(r.QueryParam("q").value(), "red shoes");
  EXPECT_EQ(r.QueryParam("limit").value(), "20");
  EXPECT_EQ(r.QueryParam("flag").value(), "");
  EXPECT_FALSE(r.QueryParam("missing"));
}

}  // namespace
}  // namespace agora::http
