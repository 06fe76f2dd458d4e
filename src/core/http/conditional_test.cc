#include "core/http/conditional.h"

#include <gtest/gtest.h>

namespace agora::http {
namespace {

Request WithIfNoneMatch(std::string value) {
  Request req;
  req.headers.Set("If-None-Match", std::move(value));
  return req;
}

TEST(Conditional, SetsAWeakBodyTagAndCacheControl) {
  Response r = Conditional(Request{}, Response::Text(200, "hello"), "public, max-age=5");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.headers.Get("ETag"), WeakETagOf("hello"));
  EXPECT_EQ(r.headers.Get("Cache-Control"), "public, max-age=5");
  EXPECT_NE(WeakETagOf("hello"), WeakETagOf("hellp"));
  EXPECT_EQ(WeakETagOf("hello").substr(0, 3), "W/\"");
}

TEST(Conditional, AnswersNotModifiedWhenTheTagMatches) {
  const std::string tag = WeakETagOf("hello");
  for (const std::string& header : {tag, tag.substr(2), "\"x\", " + tag, std::string("*")}) {
    Response r = Conditional(WithIfNoneMatch(header), Response::Text(200, "hello"), "public, max-age=5");
    EXPECT_EQ(r.status, 304) << header;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.headers.Get("ETag"), tag);
  }
  Response changed = Conditional(WithIfNoneMatch(tag), Response::Text(200, "hello!"), "public, max-age=5");
  EXPECT_EQ(changed.status, 200);
}

TEST(Conditional, UsesAGivenStrongTag) {
  Response r = Conditional(WithIfNoneMatch("\"v3\""), Response::Text(200, "x"), "private, no-cache", "\"v3\"");
  EXPECT_EQ(r.status, 304);
  Response other = Conditional(WithIfNoneMatch("\"v3\""), Response::Text(200, "x"), "private, no-cache", "\"v4\"");
  EXPECT_EQ(other.status, 200);
  Response prefix = Conditional(WithIfNoneMatch("\"v33\""), Response::Text(200, "x"), "private, no-cache", "\"v3\"");
  EXPECT_EQ(prefix.status, 200) << "a tag is matched whole";
}

}  // namespace
}  // namespace agora::http
