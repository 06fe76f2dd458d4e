#include "core/http/problem.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace agora::http {
namespace {

boost::json::object Body(const Response& r) { return boost::json::parse(r.body).as_object(); }

TEST(ProblemFrom, MapsCodesToStatuses) {
  EXPECT_EQ(ProblemFrom(Error::InvalidArgument("x")).status, 400);
  EXPECT_EQ(ProblemFrom(Error::Unauthenticated("x")).status, 401);
  EXPECT_EQ(ProblemFrom(Error::PermissionDenied("x")).status, 403);
  EXPECT_EQ(ProblemFrom(Error::NotFound("x")).status, 404);
  EXPECT_EQ(ProblemFrom(Error::Conflict("x")).status, 409);
  EXPECT_EQ(ProblemFrom(Error::FailedPrecondition("x")).status, 409);
  EXPECT_EQ(ProblemFrom(Error::ResourceExhausted("x")).status, 429);
  EXPECT_EQ(ProblemFrom(Error::Unavailable("x")).status, 503);
  EXPECT_EQ(ProblemFrom(Error::Internal("x")).status, 500);
}

TEST(ProblemFrom, CarriesTypeDetailAndFieldErrors) {
  auto r = ProblemFrom(Error::InvalidArgument("Field 'email' is bad", {{"email", "is bad"}}).WithType("validation"));
  EXPECT_EQ(r.headers.Get("Content-Type").value_or(""), "application/problem+json");
  auto b = Body(r);
  EXPECT_EQ(b["type"].as_string(), "/problems/validation");
  EXPECT_EQ(b["status"].as_int64(), 400);
  EXPECT_EQ(b["detail"].as_string(), "Field 'email' is bad");
  EXPECT_EQ(b["errors"].as_array()[0].as_object()["field"].as_string(), "email");
}

TEST(ProblemFrom, InternalAndUnavailableMessagesStayInside) {
  auto internal = ProblemFrom(Error::Internal("identity.insert_user failed: disk I/O error"));
  EXPECT_EQ(internal.body.find("identity.insert_user"), std::string::npos);
  auto down = ProblemFrom(Error::Unavailable("cannot connect to 10.0.0.5:5432 database agora"));
  EXPECT_EQ(down.body.find("10.0.0.5"), std::string::npos);
  EXPECT_EQ(down.headers.Get("Retry-After").value_or(""), "1");
}

}  // namespace
}  // namespace agora::http
