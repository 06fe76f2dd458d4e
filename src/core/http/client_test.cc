#include "core/http/client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "core/http/app.h"
#include "core/http/server.h"
#include "core/metrics.h"

namespace agora::http {
namespace {

// A real server on 127.0.0.1, a port the kernel picks, run on its own thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(const std::function<void(App&)>& add_routes) : app_(AppOptions{{}, false, {}}, registry_) {
    add_routes(app_);
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.blocking_threads = 2;
    o.cpu_threads = 1;
    o.shutdown_grace = std::chrono::seconds(3);
    server_ = std::make_unique<Server>(o, app_);
    Status s = server_->Listen();
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~LoopbackServer() {
    server_->Stop();
    thread_.join();
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
  }

 private:
  metrics::Registry registry_;
  App app_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

ClientRequest Req(std::string method, std::string url) {
  ClientRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  return r;
}

// A port nothing listens on: bound by the kernel's choice, then closed.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
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
  LoopbackServer server(AddTestRoutes);
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
  LoopbackServer server(AddTestRoutes);
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
  LoopbackServer server(AddTestRoutes);
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
  LoopbackServer server(AddTestRoutes);
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
  ClientRequest req = Req("POST", "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/x");
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
