// Test-only helpers for code that talks HTTP: a real server on loopback and
// a port nothing listens on.
//
//   http::testing::LoopbackServer server;   // listening: Url() is known
//   server.app().Add(MakeRoute(...));       // then the routes
//   server.Run();                           // served on a thread of its own
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/http/app.h"
#include "core/http/server.h"
#include "core/metrics.h"

namespace agora::http::testing {

// A real server on 127.0.0.1 and a port the kernel picks. It listens at
// once, so its URL is known before the code under test is built; routes are
// added before Run(). Stopped (if running) on destruction.
class LoopbackServer {
 public:
  LoopbackServer() : app_(AppOptions{{}, false, {}}, registry_) {
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
  }
  ~LoopbackServer() {
    if (thread_.joinable()) {
      server_->Stop();
      thread_.join();
    }
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  App& app() { return app_; }
  void Run() {
    thread_ = std::thread([this] { server_->Run(); });
  }
  std::string Url(std::string_view path = "") const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
  }

 private:
  metrics::Registry registry_;
  App app_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// A loopback port nothing listens on: bound by the kernel's choice, then closed.
inline int ClosedPort() {
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

}  // namespace agora::http::testing
