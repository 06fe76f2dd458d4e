#include "core/http/server.h"

#include <atomic>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/http/problem.h"
#include "core/log.h"

namespace agora::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

int ThreadsOr(int n) { return n > 0 ? n : std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

// State shared between a connection's coroutine and the shutdown code.
struct ConnState {
  std::atomic<bool> idle{true};
  std::function<void()> cancel;  // runs on the connection's strand
  asio::any_io_executor executor;
};

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, App& a)
      : options(std::move(o)),
        app(a),
        ioc(ThreadsOr(options.io_threads)),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM),
        blocking(static_cast<size_t>(ThreadsOr(options.blocking_threads))),
        cpu(static_cast<size_t>(ThreadsOr(options.cpu_threads))) {}

  ServerOptions options;
  App& app;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::optional<asio::ssl::context> tls;
  asio::thread_pool blocking;
  asio::thread_pool cpu;
  std::atomic<int64_t> blocking_pending{0};
  std::atomic<int64_t> cpu_pending{0};
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> connections{0};
  uint16_t bound_port = 0;

  std::mutex conns_mu;
  uint64_t next_conn_id = 0;
  std::unordered_map<uint64_t, std::shared_ptr<ConnState>> conns;

  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> RunConnection(tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> Session(Stream& stream, beast::flat_buffer& buffer, const std::string& remote_ip, bool tls_on,
                                ConnState& state);
  template <class Stream>
  asio::awaitable<bool> WriteResponse(Stream& stream, Response res, unsigned version, bool keep_alive, bool head);
  asio::awaitable<Response> Execute(const Route& route, Request& req);
  void BeginShutdown();
  asio::awaitable<void> DrainThenStop();
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
  im.acceptor.open(ep.protocol(), ec);
  if (!ec) im.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor.bind(ep, ec);
  if (!ec) im.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::Unavailable("Cannot listen on " + im.options.host + ":" + std::to_string(im.options.port) + ": " +
                              ec.message());
  }
  im.bound_port = im.acceptor.local_endpoint().port();
  return Ok();
}

uint16_t Server::port() const { return impl_->bound_port; }

int64_t Server::active_connections() const { return impl_->connections.load(); }

void Server::Run() {
  auto& im = *impl_;
  asio::co_spawn(im.ioc, im.AcceptLoop(), asio::detached);
  im.signals.async_wait([&im](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::Info("shutting down", {{"signal", sig}});
    im.BeginShutdown();
  });
  std::vector<std::thread> threads;
  const int n = ThreadsOr(im.options.io_threads);
  for (int i = 1; i < n; ++i) threads.emplace_back([&im] { im.ioc.run(); });
  im.ioc.run();
  for (auto& t : threads) t.join();
}

void Server::Stop() {
  asio::post(impl_->ioc, [im = impl_.get()] { im->BeginShutdown(); });
}

void Server::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  boost::system::error_code ec;
  acceptor.close(ec);
  signals.cancel(ec);
  std::lock_guard lock(conns_mu);
  for (auto& [id, st] : conns) {
    asio::post(st->executor, [st] {
      if (st->idle && st->cancel) st->cancel();
    });
  }
  asio::co_spawn(ioc, DrainThenStop(), asio::detached);
}

asio::awaitable<void> Server::Impl::DrainThenStop() {
  auto deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
  asio::steady_timer timer(ioc);
  while (connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(kTuple);
  }
  if (connections.load() > 0) {
    log::Warn("shutdown deadline passed with connections open", {{"connections", connections.load()}});
  }
  ioc.stop();
}

asio::awaitable<void> Server::Impl::AcceptLoop() {
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), kTuple);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      log::Warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(ioc, std::chrono::milliseconds(50));  // EMFILE and the like: back off
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
    auto ex = socket.get_executor();
    asio::co_spawn(ex, RunConnection(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::Error("connection failed", {{"error", ex.what()}});
      }
    });
  }
}

asio::awaitable<void> Server::Impl::RunConnection(tcp::socket socket) {
  ++connections;
  auto state = std::make_shared<ConnState>();
  state->executor = socket.get_executor();
  uint64_t id;
  {
    std::lock_guard lock(conns_mu);
    id = next_conn_id++;
    conns.emplace(id, state);
  }
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  std::string remote_ip = ec ? "" : remote.address().to_string();
  beast::flat_buffer buffer;
  if (tls) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
    state->cancel = [&stream] { beast::get_lowest_layer(stream).cancel(); };
    beast::get_lowest_layer(stream).expires_after(options.read_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (!hec) {
      co_await Session(stream, buffer, remote_ip, true, *state);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
      co_await stream.async_shutdown(kTuple);
    }
  } else {
    beast::tcp_stream stream(std::move(socket));
    state->cancel = [&stream] { stream.cancel(); };
    co_await Session(stream, buffer, remote_ip, false, *state);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
  {
    std::lock_guard lock(conns_mu);
    state->cancel = nullptr;
    conns.erase(id);
  }
  --connections;
}

asio::awaitable<Response> Server::Impl::Execute(const Route& route, Request& req) {
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
      pool.get_executor(), [&]() -> asio::awaitable<Response> { co_return app.Run(route, req); },
      asio::use_awaitable);
  pending.fetch_sub(1);
  co_return res;
}

template <class Stream>
asio::awaitable<bool> Server::Impl::WriteResponse(Stream& stream, Response res, unsigned version, bool keep_alive,
                                                  bool head) {
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), version};
  for (auto& [k, v] : res.headers.items()) out.insert(k, v);
  if (head) {
    out.content_length(res.body.size());
  } else {
    out.body() = std::move(res.body);
    out.prepare_payload();
  }
  out.keep_alive(keep_alive);
  beast::get_lowest_layer(stream).expires_after(options.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream, out, kTuple);
  co_return !ec;
}

template <class Stream>
asio::awaitable<void> Server::Impl::Session(Stream& stream, beast::flat_buffer& buffer, const std::string& remote_ip,
                                            bool tls_on, ConnState& state) {
  for (;;) {
    if (stopping) co_return;
    state.idle = true;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    beast::get_lowest_layer(stream).expires_after(buffer.size() == 0 ? options.idle_timeout : options.read_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    state.idle = false;
    if (!ec && !parser.is_done()) {
      auto expect = parser.get()[bhttp::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, parser.get().version()};
        beast::get_lowest_layer(stream).expires_after(options.write_timeout);
        auto [cec, cn] = co_await bhttp::async_write(stream, cont, kTuple);
        if (cec) co_return;
      }
      beast::get_lowest_layer(stream).expires_after(options.read_timeout);
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
        Request req;
        req.remote_ip = remote_ip;
        req.method_name = "-";
        req.tls = tls_on;
        app.Begin(req);  // assigns request and trace ids; the route is not used
        req.route.clear();
        req.matched_route = nullptr;
        app.Finish(req, *problem, std::chrono::nanoseconds(0));
        co_await WriteResponse(stream, std::move(*problem), 11, false, false);
      }
      co_return;
    }

    auto start = std::chrono::steady_clock::now();
    auto& msg = parser.get();
    Request req;
    req.method_name = std::string(msg.method_string());
    req.method = ParseMethod(req.method_name);
    req.target = std::string(msg.target());
    std::string_view target = req.target;
    auto qpos = target.find('?');
    auto path = PercentDecode(target.substr(0, qpos), false);
    if (qpos != std::string_view::npos) req.query = std::string(target.substr(qpos + 1));
    for (const auto& f : msg) req.headers.Add(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.remote_ip = remote_ip;
    req.tls = tls_on;

    Response res;
    if (!path || path->empty() || path->front() != '/') {
      req.path = "-";
      app.Begin(req);
      req.route.clear();
      req.matched_route = nullptr;
      res = Problem(400, "bad-request", "Bad request", "The request target is not a valid path");
    } else {
      req.path = std::move(*path);
      auto d = app.Begin(req);
      if (d.immediate) {
        res = std::move(*d.immediate);
      } else {
        res = co_await Execute(*d.route, req);
      }
    }
    app.Finish(req, res, std::chrono::steady_clock::now() - start);
    const bool keep = msg.keep_alive() && !stopping;
    if (!co_await WriteResponse(stream, std::move(res), msg.version(), keep, req.method == Method::kHead)) co_return;
    if (!keep) co_return;
  }
}

}  // namespace agora::http
