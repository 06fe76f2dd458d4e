#include "core/http/server.h"

#include <array>
#include <atomic>
#include <csignal>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include "core/http/problem.h"
#include "core/log.h"

// Design notes (measured on 2 cores; see docs/benchmarks.md):
// - One io_context per I/O thread, each run by exactly one thread, and every
//   connection pinned to one of them: no strands, no locks on the hot path.
// - Coroutines use the concrete io_context executor, not any_io_executor.
// - Timeouts are per-connection deadlines checked by one sweep timer per I/O
//   thread, instead of arming a timer around every read and write.
// - Responses are serialised by hand into one header block written together
//   with the body; Beast parses requests (the part that must be strict).

namespace agora::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Executor = asio::io_context::executor_type;
template <class T>
using Awaitable = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> kAwait;
constexpr auto kTuple = asio::as_tuple(kAwait);
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
using TlsStream = asio::ssl::stream<Socket>;

namespace {

int ThreadsOr(int n) { return n > 0 ? n : std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

// Password hashing is deliberately slow: by default it may use every core
// but one, so a burst of logins never takes the cores the I/O threads need.
int CpuThreadsOr(int n) {
  return n > 0 ? n : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
}

// One connection's state, owned by its coroutine, touched only on its I/O
// thread (the sweep and shutdown run there too).
struct Conn {
  Clock::time_point deadline = Clock::time_point::max();
  bool idle = true;
  std::function<void()> close;  // aborts pending I/O
  std::string head;             // response head, reused across requests
  // While waiting for the next request under the idle deadline: the read
  // buffer. Once bytes arrive in it, the sweep switches to the read deadline.
  const beast::flat_buffer* awaiting_head = nullptr;
};

// An I/O thread: its own io_context and the connections pinned to it.
struct Worker {
  Worker() : ioc(1), guard(asio::make_work_guard(ioc)), sweep(ioc.get_executor()) {}
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  Timer sweep;
  std::list<Conn*> conns;
  std::thread thread;
};

bool HasLineBreakOrColon(std::string_view s, bool colon) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || (colon && c == ':')) return true;
  }
  return false;
}

void AppendHead(std::string& out, int status, const Headers& headers, std::string_view fixed_headers,
                size_t content_length, bool keep_alive, unsigned version) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& [k, v] : headers.items()) {
    // Header values come from our code or from parsed (CR/LF-free) input;
    // refuse anything that could split the response anyway.
    if (HasLineBreakOrColon(k, true) || HasLineBreakOrColon(v, false)) continue;
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += fixed_headers;
  out += "Content-Length: ";
  out += std::to_string(content_length);
  out += "\r\n";
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, App& a)
      : options(std::move(o)),
        app(a),
        blocking(static_cast<size_t>(ThreadsOr(options.blocking_threads))),
        cpu(static_cast<size_t>(CpuThreadsOr(options.cpu_threads))) {
    const int n = ThreadsOr(options.io_threads);
    for (int i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>());
    acceptor.emplace(workers[0]->ioc.get_executor());
    signals.emplace(workers[0]->ioc, SIGINT, SIGTERM);
  }

  ServerOptions options;
  App& app;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<Acceptor> acceptor;
  std::optional<asio::signal_set> signals;
  std::optional<asio::ssl::context> tls;
  asio::thread_pool blocking;
  asio::thread_pool cpu;
  std::atomic<int64_t> blocking_pending{0};
  std::atomic<int64_t> cpu_pending{0};
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> connections{0};
  uint16_t bound_port = 0;

  Awaitable<void> AcceptLoop();
  Awaitable<void> Sweep(Worker& w);
  Awaitable<void> RunConnection(Worker& w, Socket socket);
  template <class Stream>
  Awaitable<void> Session(Stream& stream, Conn& conn, const std::string& remote_ip, bool tls_on);
  template <class Stream>
  Awaitable<bool> Write(Stream& stream, Conn& conn, const Response& res, unsigned version, bool keep_alive,
                        bool head_only);
  Awaitable<Response> Execute(const Route& route, Request& req);
  Response EarlyProblem(Response problem, const std::string& remote_ip, bool tls_on);
  void BeginShutdown();
  Awaitable<void> DrainThenStop();
};

Server::Server(ServerOptions options, App& app) : impl_(std::make_unique<Impl>(std::move(options), app)) {}

Server::~Server() {
  impl_->blocking.join();
  impl_->cpu.join();
}

Status Server::Listen() {
  auto& im = *impl_;
  if (!im.options.tls_cert_file.empty() || !im.options.tls_key_file.empty()) {
    if (im.options.tls_cert_file.empty() || im.options.tls_key_file.empty()) {
      return Error::InvalidArgument("TLS needs both a certificate and a key file");
    }
    try {
      im.tls.emplace(asio::ssl::context::tls_server);
      im.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      im.tls->use_certificate_chain_file(im.options.tls_cert_file);
      im.tls->use_private_key_file(im.options.tls_key_file, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      return Error::InvalidArgument(std::string("Cannot load the TLS certificate or key: ") + e.what());
    }
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(im.options.host, ec);
  if (ec) return Error::InvalidArgument("Not an IP address: " + im.options.host);
  tcp::endpoint ep(addr, im.options.port);
  im.acceptor->open(ep.protocol(), ec);
  if (!ec) im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor->bind(ep, ec);
  if (!ec) im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::Unavailable("Cannot listen on " + im.options.host + ":" + std::to_string(im.options.port) + ": " +
                              ec.message());
  }
  im.bound_port = im.acceptor->local_endpoint().port();
  return Ok();
}

uint16_t Server::port() const { return impl_->bound_port; }

int64_t Server::active_connections() const { return impl_->connections.load(); }

int64_t Server::pending_jobs(Execution pool) const {
  return pool == Execution::kCpu ? impl_->cpu_pending.load() : impl_->blocking_pending.load();
}

void Server::Run() {
  auto& im = *impl_;
  asio::co_spawn(im.workers[0]->ioc, im.AcceptLoop(), asio::detached);
  for (auto& w : im.workers) asio::co_spawn(w->ioc, im.Sweep(*w), asio::detached);
  im.signals->async_wait([&im](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::Info("shutting down", {{"signal", sig}});
    im.BeginShutdown();
  });
  for (size_t i = 1; i < im.workers.size(); ++i) {
    auto* w = im.workers[i].get();
    w->thread = std::thread([w] { w->ioc.run(); });
  }
  im.workers[0]->ioc.run();
  for (size_t i = 1; i < im.workers.size(); ++i) im.workers[i]->thread.join();
}

void Server::Stop() {
  asio::post(impl_->workers[0]->ioc, [im = impl_.get()] { im->BeginShutdown(); });
}

void Server::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  boost::system::error_code ec;
  acceptor->close(ec);
  signals->cancel(ec);
  // Idle keep-alive connections close now; busy ones after their response.
  for (auto& w : workers) {
    asio::post(w->ioc, [w = w.get()] {
      for (Conn* c : w->conns) {
        if (c->idle && c->close) c->close();
      }
    });
  }
  asio::co_spawn(workers[0]->ioc, DrainThenStop(), asio::detached);
}

Awaitable<void> Server::Impl::DrainThenStop() {
  auto deadline = Clock::now() + options.shutdown_grace;
  Timer timer(workers[0]->ioc.get_executor());
  while (connections.load() > 0 && Clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(kTuple);
  }
  if (connections.load() > 0) {
    log::Warn("shutdown deadline passed with connections open", {{"connections", connections.load()}});
  }
  for (auto& w : workers) {
    w->sweep.cancel();
    w->guard.reset();
    w->ioc.stop();
  }
}

Awaitable<void> Server::Impl::Sweep(Worker& w) {
  while (!stopping) {
    w.sweep.expires_after(std::chrono::milliseconds(500));
    auto [ec] = co_await w.sweep.async_wait(kTuple);
    if (ec) co_return;
    const auto now = Clock::now();
    for (Conn* c : w.conns) {
      // A request head that has begun to arrive gets the read timeout, not
      // what is left of the idle one.
      if (c->awaiting_head != nullptr && c->awaiting_head->size() > 0) {
        c->deadline = std::min(c->deadline, now + options.read_timeout);
        c->awaiting_head = nullptr;
      }
      if (c->deadline <= now && c->close) c->close();
    }
  }
}

Awaitable<void> Server::Impl::AcceptLoop() {
  size_t next = 0;
  while (!stopping) {
    Worker& target = *workers[next];
    next = (next + 1) % workers.size();
    auto [ec, socket] = co_await acceptor->async_accept(target.ioc.get_executor(), kTuple);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      log::Warn("accept failed", {{"error", ec.message()}});
      Timer t(workers[0]->ioc.get_executor(), std::chrono::milliseconds(50));  // EMFILE and the like: back off
      co_await t.async_wait(kTuple);
      continue;
    }
    if (static_cast<size_t>(connections.load()) >= options.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    ++connections;
    asio::co_spawn(target.ioc, RunConnection(target, std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::Error("connection failed", {{"error", ex.what()}});
      }
    });
  }
}

Awaitable<void> Server::Impl::RunConnection(Worker& w, Socket socket) {
  Conn conn;
  auto it = w.conns.insert(w.conns.end(), &conn);
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  std::string remote_ip = ec ? "" : remote.address().to_string();
  if (tls) {
    TlsStream stream(std::move(socket), *tls);
    conn.close = [&stream] {
      boost::system::error_code ignored;
      stream.lowest_layer().close(ignored);
    };
    conn.idle = false;
    conn.deadline = Clock::now() + options.read_timeout;
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (!hec) {
      co_await Session(stream, conn, remote_ip, true);
      if (stream.lowest_layer().is_open()) {
        conn.deadline = Clock::now() + std::chrono::seconds(2);
        co_await stream.async_shutdown(kTuple);
      }
    }
  } else {
    conn.close = [&socket] {
      boost::system::error_code ignored;
      socket.close(ignored);
    };
    co_await Session(socket, conn, remote_ip, false);
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }
  conn.close = nullptr;
  w.conns.erase(it);
  --connections;
}

Awaitable<Response> Server::Impl::Execute(const Route& route, Request& req) {
  if (route.execution == Execution::kInline) co_return app.Run(route, req);
  const bool is_cpu = route.execution == Execution::kCpu;
  auto& pending = is_cpu ? cpu_pending : blocking_pending;
  if (static_cast<size_t>(pending.fetch_add(1)) >= options.max_pending_jobs) {
    pending.fetch_sub(1);
    Response r = Problem(503, "overloaded", "Server busy", "Too many requests are waiting; retry shortly");
    r.headers.Set("Retry-After", "1");
    co_return r;
  }
  auto& pool = is_cpu ? cpu : blocking;
  Response res = co_await asio::co_spawn(
      pool.get_executor(), [&]() -> asio::awaitable<Response> { co_return app.Run(route, req); }, kAwait);
  pending.fetch_sub(1);
  co_return res;
}

Response Server::Impl::EarlyProblem(Response problem, const std::string& remote_ip, bool tls_on) {
  Request req;
  req.remote_ip = remote_ip;
  req.method_name = "-";
  req.path = "-";
  req.tls = tls_on;
  (void)app.Begin(req);  // assigns request and trace ids; no route is run
  req.route = {};
  req.matched_route = nullptr;
  app.Finish(req, problem, std::chrono::nanoseconds(0));
  return problem;
}

template <class Stream>
Awaitable<bool> Server::Impl::Write(Stream& stream, Conn& conn, const Response& res, unsigned version,
                                    bool keep_alive, bool head_only) {
  std::string& head = conn.head;
  head.clear();
  AppendHead(head, res.status, res.headers, app.FixedHeaders(tls.has_value()), res.body.size(), keep_alive, version);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head),
                                            head_only ? asio::const_buffer() : asio::buffer(res.body)};
  conn.deadline = Clock::now() + options.write_timeout;
  auto [ec, n] = co_await asio::async_write(stream, buffers, kTuple);
  co_return !ec;
}

template <class Stream>
Awaitable<void> Server::Impl::Session(Stream& stream, Conn& conn, const std::string& remote_ip, bool tls_on) {
  beast::flat_buffer buffer;
  for (;;) {
    if (stopping) co_return;
    conn.idle = true;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    const bool fresh = buffer.size() == 0;
    conn.deadline = Clock::now() + (fresh ? options.idle_timeout : options.read_timeout);
    conn.awaiting_head = fresh ? &buffer : nullptr;
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    conn.awaiting_head = nullptr;
    conn.idle = false;
    if (!ec) {
      // RFC 9112 6.3 and 3.2: a request whose body length cannot be known (a
      // transfer coding other than a final "chunked") or an HTTP/1.1 request
      // without Host is answered 400 and the connection closed; reading on
      // would take its body for the next request.
      const auto& head = parser.get();
      const bool unknown_length = head.find(bhttp::field::transfer_encoding) != head.end() && !parser.chunked();
      if (unknown_length || (head.version() >= 11 && head.find(bhttp::field::host) == head.end())) {
        Response res = EarlyProblem(Problem(400, "bad-request", "Bad request",
                                            unknown_length ? "The only transfer coding accepted is chunked"
                                                           : "An HTTP/1.1 request needs a Host header"),
                                    remote_ip, tls_on);
        co_await Write(stream, conn, res, 11, false, false);
        co_return;
      }
    }
    if (!ec && !parser.is_done()) {
      if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        conn.deadline = Clock::now() + options.write_timeout;
        auto [cec, cn] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
        if (cec) co_return;
      }
      conn.deadline = Clock::now() + options.read_timeout;
      std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser, kTuple);
    }
    if (ec) {
      // Answer what the client can act on; just close on timeouts and resets.
      std::optional<Response> problem;
      if (ec == bhttp::error::header_limit) {
        problem = Problem(431, "headers-too-large", "Request header fields too large",
                          "Request headers exceed " + std::to_string(options.max_header_bytes) + " bytes");
      } else if (ec == bhttp::error::body_limit) {
        problem = Problem(413, "body-too-large", "Content too large",
                          "The body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
      } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        problem = Problem(400, "bad-request", "Bad request", "The request is not valid HTTP/1.1");
      }
      if (problem) {
        Response res = EarlyProblem(std::move(*problem), remote_ip, tls_on);
        co_await Write(stream, conn, res, 11, false, false);
      }
      co_return;
    }

    const auto start = Clock::now();
    auto& msg = parser.get();
    Request req;
    req.method_name = std::string(msg.method_string());
    req.method = ParseMethod(req.method_name);
    req.target = std::string(msg.target());
    std::string_view target = req.target;
    auto qpos = target.find('?');
    auto path = PercentDecode(target.substr(0, qpos), false);
    if (qpos != std::string_view::npos) req.query = std::string(target.substr(qpos + 1));
    req.headers.Reserve(16);
    for (const auto& f : msg) req.headers.Add(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.remote_ip = remote_ip;
    req.tls = tls_on;

    Response res;
    if (!path || path->empty() || path->front() != '/') {
      res = EarlyProblem(Problem(400, "bad-request", "Bad request", "The request target is not a valid path"),
                         remote_ip, tls_on);
    } else {
      req.path = std::move(*path);
      auto d = app.Begin(req);
      // (Not a conditional expression: GCC 12 miscompiles co_await inside ?:.)
      if (d.immediate) {
        res = std::move(*d.immediate);
      } else if (d.route->execution == Execution::kInline) {
        res = app.Run(*d.route, req);  // no coroutine frame for the common case
      } else {
        res = co_await Execute(*d.route, req);
      }
      app.Finish(req, res, Clock::now() - start);
    }
    const bool keep = msg.keep_alive() && !stopping;
    if (!co_await Write(stream, conn, res, msg.version(), keep, req.method == Method::kHead)) co_return;
    if (!keep) co_return;
  }
}

}  // namespace agora::http
