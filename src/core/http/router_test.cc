#include "core/http/router.h"

#include <gtest/gtest.h>

namespace agora::http {
namespace {

Route R(Method m, std::string pattern) {
  Route r;
  r.method = m;
  r.pattern = std::move(pattern);
  r.handler = [](Request&) { return Response::Empty(204); };
  return r;
}

TEST(Router, MatchesStaticPath) {
  Router router;
  router.Add(R(Method::kGet, "/v1/me"));
  auto m = router.Find(Method::kGet, "/v1/me");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/me");
}

TEST(Router, ExtractsPathParameters) {
  Router router;
  router.Add(R(Method::kGet, "/v1/users/{id}/orders/{order}"));
  auto m = router.Find(Method::kGet, "/v1/users/usr_1/orders/ord_2");
  ASSERT_NE(m.route, nullptr);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>{"id", "usr_1"}));
  EXPECT_EQ(m.params[1], (std::pair<std::string, std::string>{"order", "ord_2"}));
}

TEST(Router, UnknownPathIsNotFound) {
  Router router;
  router.Add(R(Method::kGet, "/v1/me"));
  auto m = router.Find(Method::kGet, "/v1/you");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_FALSE(m.path_exists);
}

TEST(Router, WrongMethodListsAllowedOnes) {
  Router router;
  router.Add(R(Method::kGet, "/v1/me"));
  router.Add(R(Method::kPatch, "/v1/me"));
  auto m = router.Find(Method::kDelete, "/v1/me");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_exists);
  EXPECT_EQ(m.allow, "GET, HEAD, PATCH");
}

TEST(Router, HeadUsesGetRoute) {
  Router router;
  router.Add(R(Method::kGet, "/healthz"));
  EXPECT_NE(router.Find(Method::kHead, "/healthz").route, nullptr);
}

TEST(Router, LiteralBeatsNothingAndSegmentCountMatters) {
  Router router;
  router.Add(R(Method::kGet, "/v1/items/{id}"));
  EXPECT_EQ(router.Find(Method::kGet, "/v1/items").route, nullptr);
  EXPECT_EQ(router.Find(Method::kGet, "/v1/items/a/b").route, nullptr);
}

TEST(Router, DuplicateRouteIsABug) {
  Router router;
  router.Add(R(Method::kGet, "/x"));
  EXPECT_THROW(router.Add(R(Method::kGet, "/x")), std::logic_error);
}

}  // namespace
}  // namespace agora::http
