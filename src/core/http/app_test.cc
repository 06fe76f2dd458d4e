#include "core/http/app.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace agora::http {
namespace {

class FakeAuth : public Authenticator {
 public:
  Result<Principal> Authenticate(std::string_view token) override {
    if (token == "buyer-token") return Principal{"usr_1", {"buyer"}, "jti", 0};
    if (token == "admin-token") return Principal{"usr_2", {"buyer", "admin"}, "jti", 0};
    return Error::Unauthenticated("token is not valid");
  }
};

class AppTest : public ::testing::Test {
 protected:
  AppTest() : app_(AppOptions{{"https://shop.example"}, false}, registry_) {
    Route echo;
    echo.method = Method::kPost;
    echo.pattern = "/v1/echo";
    echo.handler = [](Request& r) { return Response::Text(200, r.body); };
    app_.Add(echo);
    Route me;
    me.method = Method::kGet;
    me.pattern = "/v1/me";
    me.authenticated = true;
    me.handler = [](Request& r) { return Response::Text(200, r.principal->user_id); };
    app_.Add(me);
    Route admin;
    admin.method = Method::kGet;
    admin.pattern = "/v1/admin/things";
    admin.authenticated = true;
    admin.roles = {"admin"};
    admin.handler = [](Request&) { return Response::Empty(204); };
    app_.Add(admin);
    Route boom;
    boom.method = Method::kGet;
    boom.pattern = "/boom";
    boom.handler = [](Request&) -> Response { throw std::runtime_error("secret detail"); };
    app_.Add(boom);
    app_.SetAuthenticator(std::make_shared<FakeAuth>());
  }

  Response Call(Request req) {
    auto d = app_.Begin(req);
    Response res = d.immediate ? std::move(*d.immediate) : app_.Run(*d.route, req);
    app_.Finish(req, res, std::chrono::microseconds(100));
    last_ = req;
    return res;
  }

  static Request Make(Method m, std::string path) {
    Request r;
    r.method = m;
    r.method_name = std::string(MethodName(m));
    r.path = std::move(path);
    return r;
  }

  static boost::json::object Body(const Response& r) { return boost::json::parse(r.body).as_object(); }

  metrics::Registry registry_;
  App app_;
  Request last_;
};

TEST_F(AppTest, UnknownRouteIs404Problem) {
  auto res = Call(Make(Method::kGet, "/nope"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("Content-Type").value_or(""), "application/problem+json");
  EXPECT_EQ(Body(res)["status"].as_int64(), 404);
}

TEST_F(AppTest, WrongMethodIs405WithAllow) {
  auto res = Call(Make(Method::kGet, "/v1/echo"));
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.Get("Allow").value_or(""), "POST");
}

TEST_F(AppTest, NonJsonBodyIs415) {
  auto req = Make(Method::kPost, "/v1/echo");
  req.body = "a=b";
  req.headers.Add("Content-Type", "application/x-www-form-urlencoded");
  EXPECT_EQ(Call(req).status, 415);
}

TEST_F(AppTest, JsonWithCharsetIsAccepted) {
  auto req = Make(Method::kPost, "/v1/echo");
  req.body = "{}";
  req.headers.Add("Content-Type", "application/json; charset=utf-8");
  EXPECT_EQ(Call(req).status, 200);
}

TEST_F(AppTest, AuthenticationComesBeforeContentType) {
  Route guarded;
  guarded.method = Method::kPost;
  guarded.pattern = "/v1/guarded";
  guarded.authenticated = true;
  guarded.handler = [](Request&) { return Response::Empty(204); };
  app_.Add(guarded);
  auto req = Make(Method::kPost, "/v1/guarded");
  req.body = "a=b";
  req.headers.Add("Content-Type", "text/plain");
  EXPECT_EQ(Call(req).status, 401);  // no token: nothing about what the route accepts
  req.headers.Add("Authorization", "Bearer buyer-token");
  EXPECT_EQ(Call(req).status, 415);
}

TEST_F(AppTest, MissingTokenIs401WithChallenge) {
  auto res = Call(Make(Method::kGet, "/v1/me"));
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.headers.Get("WWW-Authenticate").value_or(""), "Bearer");
}

TEST_F(AppTest, BadTokenIs401) {
  auto req = Make(Method::kGet, "/v1/me");
  req.headers.Add("Authorization", "Bearer forged");
  auto res = Call(req);
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.headers.Get("WWW-Authenticate").value_or("").find("invalid_token"), std::string_view::npos);
}

TEST_F(AppTest, ValidTokenReachesHandlerWithPrincipal) {
  auto req = Make(Method::kGet, "/v1/me");
  req.headers.Add("Authorization", "Bearer buyer-token");
  auto res = Call(req);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "usr_1");
}

TEST_F(AppTest, RoleMissingIs403) {
  auto req = Make(Method::kGet, "/v1/admin/things");
  req.headers.Add("Authorization", "Bearer buyer-token");
  EXPECT_EQ(Call(req).status, 403);
  req.headers.Set("Authorization", "Bearer admin-token");
  EXPECT_EQ(Call(req).status, 204);
}

TEST_F(AppTest, HandlerExceptionIs500WithoutDetail) {
  auto res = Call(Make(Method::kGet, "/boom"));
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.body.find("secret"), std::string::npos);
}

TEST_F(AppTest, SecurityHeadersAndRequestIdAreSet) {
  auto res = Call(Make(Method::kGet, "/nope"));
  EXPECT_EQ(res.headers.Get("X-Request-Id").value_or("").size(), 32u);
  EXPECT_EQ(res.headers.Get("Cache-Control").value_or(""), "no-store");
  EXPECT_NE(app_.FixedHeaders(false).find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
  EXPECT_NE(app_.FixedHeaders(false).find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_EQ(app_.FixedHeaders(false).find("Strict-Transport-Security"), std::string::npos);
  EXPECT_NE(app_.FixedHeaders(true).find("Strict-Transport-Security: max-age="), std::string::npos);
}

TEST_F(AppTest, SaneRequestIdIsKeptInsaneOneReplaced) {
  auto req = Make(Method::kGet, "/nope");
  req.headers.Add("X-Request-Id", "abc-123");
  EXPECT_EQ(Call(req).headers.Get("X-Request-Id").value_or(""), "abc-123");
  req.headers.Set("X-Request-Id", "bad id\"with quotes");
  EXPECT_NE(Call(req).headers.Get("X-Request-Id").value_or(""), "bad id\"with quotes");
}

TEST_F(AppTest, TraceparentIsPropagated) {
  auto req = Make(Method::kGet, "/nope");
  req.headers.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto res = Call(req);
  std::string tp(res.headers.Get("traceparent").value_or(""));
  EXPECT_EQ(tp.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_NE(tp.substr(36, 16), "00f067aa0ba902b7");  // our own span
}

TEST_F(AppTest, MalformedTraceparentStartsNewTrace) {
  auto req = Make(Method::kGet, "/nope");
  req.headers.Add("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  auto res = Call(req);
  EXPECT_EQ(std::string(res.headers.Get("traceparent").value_or("")).find("00000000000000000000000000000000"),
            std::string::npos);
}

TEST_F(AppTest, CorsPreflightForAllowedOrigin) {
  auto req = Make(Method::kOptions, "/v1/echo");
  req.headers.Add("Origin", "https://shop.example");
  req.headers.Add("Access-Control-Request-Method", "POST");
  auto res = Call(req);
  EXPECT_EQ(res.status, 204);
  EXPECT_EQ(res.headers.Get("Access-Control-Allow-Origin").value_or(""), "https://shop.example");
}

TEST_F(AppTest, CorsPreflightForOtherOriginIsRefused) {
  auto req = Make(Method::kOptions, "/v1/echo");
  req.headers.Add("Origin", "https://evil.example");
  req.headers.Add("Access-Control-Request-Method", "POST");
  auto res = Call(req);
  EXPECT_EQ(res.status, 403);
  EXPECT_FALSE(res.headers.Has("Access-Control-Allow-Origin"));
}

TEST_F(AppTest, MetricsCountRequestsPerRouteAndStatus) {
  auto req = Make(Method::kGet, "/v1/me");
  Call(req);
  Call(req);
  std::string text = registry_.Render();
  EXPECT_NE(text.find(R"(agora_http_requests_total{route="/v1/me",method="GET",status="401"} 2)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(agora_http_request_duration_seconds_count{route="/v1/me",method="GET"} 2)"),
            std::string::npos);
}

}  // namespace
}  // namespace agora::http

namespace agora::http {
namespace {

class ClientIpTest : public ::testing::Test {
 protected:
  ClientIpTest() : app_(AppOptions{{}, false, {"10.0.0.1", "10.0.0.2"}}, registry_) {
    Route r;
    r.pattern = "/ip";
    r.handler = [](Request& req) { return Response::Text(200, req.client_ip); };
    app_.Add(r);
  }
  std::string ClientOf(std::string peer, std::optional<std::string> xff) {
    Request req;
    req.method_name = "GET";
    req.path = "/ip";
    req.remote_ip = std::move(peer);
    if (xff) req.headers.Add("X-Forwarded-For", *xff);
    auto d = app_.Begin(req);
    return app_.Run(*d.route, req).body;
  }
  metrics::Registry registry_;
  App app_;
};

TEST_F(ClientIpTest, UntrustedPeerIsTheClientWhateverItClaims) {
  EXPECT_EQ(ClientOf("203.0.113.9", "198.51.100.1"), "203.0.113.9");
}

TEST_F(ClientIpTest, TrustedProxyNamesTheClient) {
  EXPECT_EQ(ClientOf("10.0.0.1", "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(ClientOf("10.0.0.1", std::nullopt), "10.0.0.1");
}

TEST_F(ClientIpTest, ChainsOfTrustedProxiesAreWalkedFromTheRight) {
  // A forged left-most entry cannot win: the nearest untrusted hop does.
  EXPECT_EQ(ClientOf("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.2"), "198.51.100.7");
}

TEST_F(ClientIpTest, GarbageInTheHeaderIsNotBelieved) {
  EXPECT_EQ(ClientOf("10.0.0.1", "198.51.100.1, <script>"), "10.0.0.1");
  EXPECT_EQ(ClientOf("10.0.0.1", ""), "10.0.0.1");
}

}  // namespace
}  // namespace agora::http
