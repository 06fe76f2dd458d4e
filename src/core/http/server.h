// The HTTP/1.1 server: Boost.Beast and Asio live behind this header only.
//
// Accepts on one address (plain TCP or TLS), runs one coroutine per
// connection with keep-alive, enforces header and body limits (431, 413),
// read/idle/write timeouts and a connection cap, and hands each request to an
// App. Handlers run on the I/O threads, the blocking pool or the CPU pool as
// their Route says; a pool that is full answers 503. Graceful shutdown on
// SIGINT/SIGTERM or Stop(): stop accepting, close idle connections, let
// in-flight requests finish within `shutdown_grace`, then stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/http/app.h"
#include "core/result.h"

namespace agora::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                       // 0 picks a free port
  size_t max_header_bytes = 16 * 1024;        // larger headers: 431
  size_t max_body_bytes = 1024 * 1024;        // larger bodies: 413
  std::chrono::seconds read_timeout{30};      // to read one request once it started
  std::chrono::seconds idle_timeout{60};      // keep-alive wait for the next request
  std::chrono::seconds write_timeout{30};
  size_t max_connections = 10000;             // further connections are closed at once
  std::chrono::seconds shutdown_grace{10};    // in-flight requests get this long to finish
  int io_threads = 0;                         // 0: one per core
  int blocking_threads = 8;                   // handlers that wait on a database
  int cpu_threads = 0;                        // 0: cores - 1, at least 1 (password hashing)
  size_t max_pending_jobs = 256;              // per pool, queued or running; beyond: 503
  std::string tls_cert_file;                  // both set: TLS on the listener
  std::string tls_key_file;
};

class Server {
 public:
  Server(ServerOptions options, App& app);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (and loads the TLS certificate). kUnavailable with a
  // clear message when the address is taken or the certificate is bad.
  Status Listen();
  // The bound port, after Listen().
  uint16_t port() const;
  // Serves until a signal or Stop(), then shuts down gracefully. Blocks.
  void Run();
  // Begins graceful shutdown; safe from any thread and from signal-free code.
  void Stop();

  int64_t active_connections() const;
  // Jobs queued or running on the blocking or CPU pool (the 503 threshold is max_pending_jobs).
  int64_t pending_jobs(Execution pool) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::http
