#include "services/identity/api/handlers.h"

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"

namespace agora::identity {
namespace {

using http::Execution;
using http::MakeRoute;
using http::Method;
using http::Request;
using http::Response;

std::string Rfc3339Ms(int64_t ms) { return FormatRfc3339(TimePoint(std::chrono::milliseconds(ms))); }

boost::json::object UserJson(const IdentityService& svc, const User& u) {
  boost::json::array roles;
  for (const auto& r : u.roles) roles.emplace_back(r);
  boost::json::object o{
      {"id", u.id},
      {"email", u.email},
      {"email_verified", u.email_verified_at_ms.has_value()},
      {"display_name", u.display_name},
      {"roles", std::move(roles)},
      {"created_at", Rfc3339Ms(u.created_at_ms)},
      {"updated_at", Rfc3339Ms(u.updated_at_ms)},
  };
  if (u.seller) {
    boost::json::object seller{{"display_name", u.seller->display_name},
                               {"onboarded_at", Rfc3339Ms(u.seller->onboarded_at_ms)}};
    if (auto payout = svc.PayoutDetailsOf(u); payout.ok()) {
      // Only the last four characters leave the service.
      std::string last4 = payout->iban.size() >= 4 ? payout->iban.substr(payout->iban.size() - 4) : "";
      seller["payout"] = boost::json::object{{"account_holder", payout->account_holder}, {"iban_last4", last4}};
    } else {
      // A key missing from data/keys: the profile still answers, loudly logged.
      log::Error("payout details cannot be decrypted", {{"user_id", u.id}, {"error", payout.error().message}});
    }
    o["seller"] = std::move(seller);
  } else {
    o["seller"] = nullptr;
  }
  return o;
}

Response TokensJson(const TokenPair& t) {
  return Response::Json(200, boost::json::object{{"access_token", t.access_token},
                                                 {"token_type", "Bearer"},
                                                 {"expires_in", t.expires_in_s},
                                                 {"refresh_token", t.refresh_token},
                                                 {"refresh_expires_in", t.refresh_expires_in_s}});
}

// The answer for an error from the service. kUnavailable and kInternal
// messages come from the database driver or the mailbox (hosts, ports,
// database names, paths): ProblemFrom keeps them out of the response, and
// they are logged here with the request id.
Response ServiceProblem(const Request& req, const Error& error) {
  return http::ServiceProblem(req, error, "identity");
}

http::Route Authed(http::Route r, std::vector<std::string> roles = {}) {
  r.authenticated = true;
  r.roles = std::move(roles);
  return r;
}

}  // namespace

void AddRoutes(http::App& app, IdentityService& svc, bool reads_inline) {
  const Execution read = reads_inline ? Execution::kInline : Execution::kBlocking;
  // Passwords are hashed on the CPU pool, never on I/O threads.
  app.Add(MakeRoute(Method::kPost, "/v1/auth/register", Execution::kCpu, [&svc](Request& req) {
    std::optional<std::string> email, password, name;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          email = r.String("email", true, 3, 254);
          password = r.String("password", true, 1, 1024);
          name = r.String("display_name", true, 1, 64);
        })) {
      return *bad;
    }
    auto user = svc.Register(*email, *password, *name);
    if (!user.ok()) return ServiceProblem(req, user.error());
    Response res = Response::Json(201, UserJson(svc, *user));
    res.headers.Set("Location", "/v1/me");
    return res;
  }));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/login", Execution::kCpu, [&svc](Request& req) {
    std::optional<std::string> email, password;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          email = r.String("email", true, 1, 254);
          password = r.String("password", true, 1, 1024);
        })) {
      return *bad;
    }
    std::chrono::seconds retry_after{0};
    auto tokens = svc.Login(*email, *password, req.client_ip, &retry_after);
    if (!tokens.ok()) {
      Response res = ServiceProblem(req, tokens.error());
      if (retry_after.count() > 0) res.headers.Set("Retry-After", std::to_string(retry_after.count()));
      return res;
    }
    return TokensJson(*tokens);
  }));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/refresh", Execution::kBlocking, [&svc](Request& req) {
    std::optional<std::string> token;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { token = r.String("refresh_token", true, 1, 256); })) {
      return *bad;
    }
    auto tokens = svc.Refresh(*token);
    return tokens.ok() ? TokensJson(*tokens) : ServiceProblem(req, tokens.error());
  }));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/logout", Execution::kBlocking, [&svc](Request& req) {
    std::optional<std::string> token;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { token = r.String("refresh_token", true, 1, 256); })) {
      return *bad;
    }
    Status s = svc.Logout(*token);
    return s.ok() ? Response::Empty(204) : ServiceProblem(req, s.error());
  }));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/email/verify", Execution::kBlocking, [&svc](Request& req) {
    std::optional<std::string> token;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { token = r.String("token", true, 1, 256); })) {
      return *bad;
    }
    Status s = svc.VerifyEmail(*token);
    return s.ok() ? Response::Empty(204) : ServiceProblem(req, s.error());
  }));

  app.Add(Authed(MakeRoute(Method::kPost, "/v1/auth/email/resend", Execution::kBlocking, [&svc](Request& req) {
    Status s = svc.ResendVerification(req.principal->user_id);
    return s.ok() ? Response::Empty(202) : ServiceProblem(req, s.error());
  })));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/password/forgot", Execution::kBlocking, [&svc](Request& req) {
    std::optional<std::string> email;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { email = r.String("email", true, 1, 254); })) {
      return *bad;
    }
    Status s = svc.ForgotPassword(*email);
    if (!s.ok()) return ServiceProblem(req, s.error());
    // The same answer whether or not the account exists.
    return Response::Json(202, boost::json::object{
                                   {"message", "If an account exists for this email, a reset link is on its way."}});
  }));

  app.Add(MakeRoute(Method::kPost, "/v1/auth/password/reset", Execution::kCpu, [&svc](Request& req) {
    std::optional<std::string> token, password;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          token = r.String("token", true, 1, 256);
          password = r.String("password", true, 1, 1024);
        })) {
      return *bad;
    }
    Status s = svc.ResetPassword(*token, *password);
    return s.ok() ? Response::Empty(204) : ServiceProblem(req, s.error());
  }));

  app.Add(Authed(MakeRoute(Method::kGet, "/v1/me", read, [&svc](Request& req) {
    auto user = svc.GetUser(req.principal->user_id);
    return user.ok() ? Response::Json(200, UserJson(svc, *user)) : ServiceProblem(req, user.error());
  })));

  app.Add(Authed(MakeRoute(Method::kPatch, "/v1/me", Execution::kBlocking, [&svc](Request& req) {
    std::optional<std::string> name;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { name = r.String("display_name", false, 1, 64); })) {
      return *bad;
    }
    auto user = name ? svc.UpdateDisplayName(req.principal->user_id, *name) : svc.GetUser(req.principal->user_id);
    return user.ok() ? Response::Json(200, UserJson(svc, *user)) : ServiceProblem(req, user.error());
  })));

  app.Add(Authed(MakeRoute(Method::kPost, "/v1/me/seller", Execution::kBlocking,
                           [&svc](Request& req) {
                             std::optional<std::string> name, holder, iban;
                             if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
                                   name = r.String("display_name", true, 1, 64);
                                   if (const auto* payout = r.Object("payout", true)) {
                                     json::FieldReader p(*payout);
                                     holder = p.String("account_holder", true, 1, 70);
                                     iban = p.String("iban", true, 15, 42);
                                     if (Status s = p.Finish(); !s.ok()) {
                                       for (const auto& f : s.error().fields) r.AddError("payout." + f.field, f.message);
                                     }
                                   }
                                 })) {
                               return *bad;
                             }
                             auto user = svc.OnboardSeller(req.principal->user_id, *name, {*holder, *iban});
                             return user.ok() ? Response::Json(200, UserJson(svc, *user))
                                              : ServiceProblem(req, user.error());
                           }),
                 {kRoleBuyer}));

  app.Add(Authed(MakeRoute(Method::kGet, "/v1/admin/users/{id}", read,
                           [&svc](Request& req) {
                             // Checked by the gateway policy and again here.
                             if (!req.principal->HasRole(kRoleAdmin)) {
                               return http::ProblemFrom(Error::PermissionDenied("Administrators only"));
                             }
                             std::string id(req.PathParam("id"));
                             if (!IsValidId(id, "usr_")) {
                               return http::ProblemFrom(Error::NotFound("No such user").WithType("user-not-found"));
                             }
                             auto user = svc.GetUser(id);
                             return user.ok() ? Response::Json(200, UserJson(svc, *user))
                                              : ServiceProblem(req, user.error());
                           }),
                 {kRoleAdmin}));

  app.Add(MakeRoute(Method::kGet, "/.well-known/jwks.json", Execution::kInline, [&svc](Request&) {
    Response res = Response::Json(200, svc.keys().Jwks());
    res.headers.Set("Content-Type", "application/jwk-set+json");
    res.headers.Set("Cache-Control", "public, max-age=300");
    return res;
  }));

  app.Add(MakeRoute(Method::kGet, "/.well-known/openid-configuration", Execution::kInline, [&svc](Request&) {
    const std::string& base = svc.options().issuer;
    Response res = Response::Json(
        200, boost::json::object{
                 {"issuer", base},
                 {"jwks_uri", base + "/.well-known/jwks.json"},
                 {"token_endpoint", base + "/v1/auth/login"},
                 {"userinfo_endpoint", base + "/v1/me"},
                 {"response_types_supported", boost::json::array{"token"}},
                 {"subject_types_supported", boost::json::array{"public"}},
                 {"id_token_signing_alg_values_supported", boost::json::array{"EdDSA"}},
                 {"token_endpoint_auth_methods_supported", boost::json::array{"none"}},
                 {"claims_supported", boost::json::array{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "roles",
                                                         "email_verified"}},
             });
    res.headers.Set("Cache-Control", "public, max-age=300");
    return res;
  }));
}

}  // namespace agora::identity
