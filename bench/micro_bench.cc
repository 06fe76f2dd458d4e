// Micro benchmarks of the per-request building blocks (Google Benchmark).
// Run: build/release/bench/agora_micro_bench. The HTTP-level figures come
// from bench/run; these explain where a request's time goes.
#include <benchmark/benchmark.h>

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/crypto/jws.h"
#include "core/crypto/password.h"
#include "core/http/router.h"
#include "core/json.h"
#include "services/gateway/jwt_authenticator.h"

namespace {

using namespace agora;

std::string Token(crypto::KeyRing& keys) {
  const int64_t now = SystemClock::Instance().NowSeconds();
  return keys.SignJwt({{"iss", "https://agora.test"}, {"aud", "agora"}, {"sub", "usr_01M8HA02AZ9ZVWMNCJPQN2NPNB"},
                       {"iat", now}, {"nbf", now}, {"exp", now + 900}, {"jti", "at_1"},
                       {"roles", boost::json::array{"buyer"}}});
}

void BM_JwtVerifySignature(benchmark::State& state) {
  auto keys = crypto::KeyRing::InMemoryForTest();
  std::string token = Token(*keys);
  for (auto _ : state) benchmark::DoNotOptimize(keys->VerifyJwt(token));
}
BENCHMARK(BM_JwtVerifySignature);

void BM_AuthenticateCachedToken(benchmark::State& state) {
  auto keys = crypto::KeyRing::InMemoryForTest();
  gateway::JwtAuthenticator auth(keys, "https://agora.test", "agora", SystemClock::Instance());
  std::string token = Token(*keys);
  (void)auth.Authenticate(token);
  for (auto _ : state) benchmark::DoNotOptimize(auth.Authenticate(token));
}
BENCHMARK(BM_AuthenticateCachedToken)->Threads(1)->Threads(2);

void BM_RouterFind(benchmark::State& state) {
  http::Router router;
  for (const char* p : {"/healthz", "/readyz", "/metrics", "/v1/me", "/v1/auth/login", "/v1/auth/register",
                        "/v1/admin/users/{id}", "/v1/products/{id}", "/v1/orders/{id}/ship"}) {
    http::Route r;
    r.pattern = p;
    r.handler = [](http::Request&) { return http::Response::Empty(204); };
    router.Add(std::move(r));
  }
  const char* path = state.range(0) == 0 ? "/v1/me" : "/v1/orders/ord_01M8HA02AZ9ZVWMNCJPQN2NPNB/ship";
  for (auto _ : state) benchmark::DoNotOptimize(router.Find(http::Method::kGet, path));
}
BENCHMARK(BM_RouterFind)->Arg(0)->Arg(1);

void BM_ParseRegisterBody(benchmark::State& state) {
  const std::string body =
      R"({"email":"ada@example.com","password":"correct horse battery staple","display_name":"Ada Lovelace"})";
  for (auto _ : state) {
    auto obj = json::ParseObject(body);
    json::FieldReader r(*obj);
    benchmark::DoNotOptimize(r.String("email", true, 3, 254));
    benchmark::DoNotOptimize(r.String("password", true, 1, 1024));
    benchmark::DoNotOptimize(r.String("display_name", true, 1, 64));
    benchmark::DoNotOptimize(r.Finish());
  }
}
BENCHMARK(BM_ParseRegisterBody);

void BM_Argon2idInteractiveVerify(benchmark::State& state) {
  auto hash = crypto::HashPassword("correct horse battery staple", crypto::PasswordHashParams::Interactive());
  for (auto _ : state) benchmark::DoNotOptimize(crypto::VerifyPassword(*hash, "correct horse battery staple"));
}
BENCHMARK(BM_Argon2idInteractiveVerify)->Unit(benchmark::kMillisecond)->Iterations(10);

}  // namespace

BENCHMARK_MAIN();
