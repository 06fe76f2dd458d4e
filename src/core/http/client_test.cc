#include "core/http/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "core/http/app.h"
#include "core/http/http_testing.h"

namespace agora::http {
namespace {

ClientRequest Req(std::string method, std::string url) {
  ClientRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  return r;
}

void AddTestRoutes(App& app) {
  Route echo = MakeRoute(Method::kPost, "/echo", Execution::kInline, [](Request& req) {
    Response res = Response::Text(201, req.body);
    res.headers.Set("X-Reply", "yes");
    res.headers.Set("X-Saw-Token", std::string(req.headers.Get("X-Token").value_or("")));
    res.headers.Set("X-Saw-Type", std::string(req.headers.Get("Content-Type").value_or("")));
    return res;
  });
  echo.json_body = false;
  app.Add(std::move(echo));
  app.Add(MakeRoute(Method::kDelete, "/things/{id}", Execution::kInline,
                    [](Request& req) { return Response::Text(200, "deleted " + std::string(req.PathParam("id"))); }));
  app.Add(MakeRoute(Method::kGet, "/slow", Execution::kBlocking, [](Request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return Response::Text(200, "late");
  }));
}

TEST(HttpClient, PostSendsHeadersAndBodyAndReadsTheResponse) {
  testing::LoopbackServer server;
  AddTestRoutes(server.app());
  server.Run();
  ClientRequest req;
  req.url = server.Url("/echo");
  req.headers = {{"X-Token", "abc"}, {"Content-Type", "application/json"}};
  req.body = R"({"hello":"world"})";
  auto res = Send(req);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->body, req.body);
  EXPECT_EQ(res->Header("X-Reply"), "yes");
  EXPECT_EQ(res->Header("x-saw-token"), "abc");
  EXPECT_EQ(res->Header("X-Saw-Type"), "application/json");
  EXPECT_EQ(res->Header("X-Missing"), "");
  for (const auto& [name, value] : res->headers) {
    for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
  }
}

TEST(HttpClient, SendsLargeBodiesWithoutWaitingForContinue) {
  testing::LoopbackServer server;
  AddTestRoutes(server.app());
  server.Run();
  ClientRequest req;
  req.url = server.Url("/echo");
  req.body = std::string(200 * 1024, 'x');
  auto start = std::chrono::steady_clock::now();
  auto res = Send(req);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->body.size(), req.body.size());
  // No Content-Type given: curl's form-urlencoded default is not sent.
  EXPECT_EQ(res->Header("X-Saw-Type"), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

TEST(HttpClient, OtherMethodsAndErrorStatusesAreResponses) {
  testing::LoopbackServer server;
  AddTestRoutes(server.app());
  server.Run();
  auto gone = Send(Req("DELETE", server.Url("/things/7")));
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_EQ(gone->status, 200);
  EXPECT_EQ(gone->body, "deleted 7");

  auto missing = Send(Req("GET", server.Url("/nope")));
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->Header("Content-Type"), "application/problem+json");
}

TEST(HttpClient, TimeoutIsUnavailable) {
  testing::LoopbackServer server;
  AddTestRoutes(server.app());
  server.Run();
  auto start = std::chrono::steady_clock::now();
  ClientRequest req = Req("GET", server.Url("/slow"));
  req.timeout = std::chrono::milliseconds(200);
  auto res = Send(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(res.error().type, "http-timeout");
  EXPECT_NE(res.error().message.find("127.0.0.1"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
}

TEST(HttpClient, ClosedPortIsUnreachable) {
  ClientRequest req = Req("POST", "http://127.0.0.1:" + std::to_string(testing::ClosedPort()) + "/x");
  req.body = "secret-body";
  auto res = Send(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(res.error().type, "http-unreachable");
  EXPECT_EQ(res.error().message.find("secret-body"), std::string::npos);
}

TEST(HttpClient, RefusesUrlsThatAreNotHttp) {
  for (const char* url : {"ftp://127.0.0.1/x", "file:///etc/passwd", "not a url", "", "gopher://h/"}) {
    auto res = Send(Req("GET", url));
    ASSERT_FALSE(res.ok()) << url;
    EXPECT_EQ(res.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

TEST(HttpClient, RefusesHeadersWithLineBreaks) {
  ClientRequest req = Req("POST", "http://127.0.0.1:1/");
  req.headers = {{"X-A", "b\r\nX-Injected: 1"}};
  auto res = Send(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace agora::http
