#include "services/identity/domain/service.h"

#include <atomic>
#include <mutex>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/crypto/random.h"
#include "core/db/db_testing.h"
#include "core/events/events.h"
#include "services/identity/store/sql_store.h"

namespace agora::identity {
namespace {

using std::chrono::seconds;

class RecordingMailer : public Mailer {
 public:
  Status Send(const Mail& mail) override {
    if (fail) return Error::Unavailable("mail server down");
    std::lock_guard lock(mu);
    mails.push_back(mail);
    return Ok();
  }
  std::optional<Mail> Last(const std::string& purpose) {
    std::lock_guard lock(mu);
    for (auto it = mails.rbegin(); it != mails.rend(); ++it) {
      if (it->purpose == purpose) return *it;
    }
    return std::nullopt;
  }
  std::atomic<bool> fail{false};
  std::mutex mu;
  std::vector<Mail> mails;
};

constexpr const char* kPassword = "correct horse battery staple";

// The same suite runs on SQLite and on PostgreSQL.
class IdentityServiceTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("identity", IdentityMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("identity.events", events::Migrations()).ok());
    // As in production: the user cache is on for the embedded store.
    store_ = std::make_unique<SqlIdentityStore>(*db_, GetParam() == db::Dialect::kSqlite);
    keys_ = crypto::KeyRing::InMemoryForTest(clock_);
    aead_ = std::make_shared<crypto::Aead>(std::vector<crypto::Aead::Key>{{"k1", crypto::RandomBytes(32)}});
    IdentityOptions options;
    options.hash_params = crypto::PasswordHashParams::ForTest();
    options.login_free_failures_per_account = 3;
    options.login_free_failures_per_ip = 100;
    service_ = std::make_unique<IdentityService>(options, *store_, keys_, aead_, mailer_, clock_);
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    db_.reset();
    scratch_.reset();
  }

  User MustRegister(const std::string& email = "ada@example.com") {
    auto u = service_->Register(email, kPassword, "Ada");
    EXPECT_TRUE(u.ok()) << (u.ok() ? "" : u.error().message);
    return u.ok() ? *u : User{};
  }

  int64_t CountOutbox(const std::string& type) {
    auto rows = db_->Exec("test.count", "SELECT COUNT(*) FROM outbox_events WHERE type = $1", {type});
    return rows.ok() ? (*rows)[0].Int(0) : -1;
  }

  ManualClock clock_;
  RecordingMailer mailer_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<SqlIdentityStore> store_;
  std::shared_ptr<crypto::KeyRing> keys_;
  std::shared_ptr<crypto::Aead> aead_;
  std::unique_ptr<IdentityService> service_;
};

TEST_P(IdentityServiceTest, RegisterCreatesBuyerMailsTokenAndPublishesEvent) {
  User u = MustRegister("  Ada@Example.com ");
  EXPECT_EQ(u.email, "ada@example.com");
  EXPECT_EQ(u.roles, std::vector<std::string>{"buyer"});
  EXPECT_FALSE(u.email_verified_at_ms);
  EXPECT_NE(u.password_hash.find("$argon2id$"), std::string::npos);
  ASSERT_TRUE(mailer_.Last("verify_email"));
  EXPECT_EQ(mailer_.Last("verify_email")->to, "ada@example.com");
  EXPECT_EQ(CountOutbox("user.registered"), 1);
}

TEST_P(IdentityServiceTest, DuplicateEmailIsConflictWhateverTheCase) {
  MustRegister("ada@example.com");
  auto again = service_->Register("ADA@example.com", kPassword, "Other");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().type, "email-taken");
  EXPECT_EQ(CountOutbox("user.registered"), 1);
}

TEST_P(IdentityServiceTest, ConcurrentRegistrationsOfOneEmailCreateOneAccount) {
  std::atomic<int> ok{0}, conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = service_->Register("race@example.com", kPassword, "Racer");
      if (r.ok()) ++ok;
      else if (r.error().code == ErrorCode::kConflict) ++conflict;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 7);
}

TEST_P(IdentityServiceTest, WeakPasswordIsRefusedAndNothingIsWritten) {
  auto r = service_->Register("bob@example.com", "password1", "Bob");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(r.error().fields.size(), 1u);
  EXPECT_EQ(r.error().fields[0].field, "password");
  EXPECT_EQ(store_->FindUserByEmail("bob@example.com").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(CountOutbox("user.registered"), 0);
}

TEST_P(IdentityServiceTest, LoginIssuesVerifiableAccessToken) {
  User u = MustRegister();
  auto tokens = service_->Login("ADA@example.com", kPassword, "127.0.0.1");
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  EXPECT_EQ(tokens->expires_in_s, 900);
  auto claims = keys_->VerifyJwt(tokens->access_token);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->at("sub").as_string(), u.id);
  EXPECT_EQ(claims->at("roles").as_array().size(), 1u);
  EXPECT_EQ(claims->at("exp").as_int64() - claims->at("iat").as_int64(), 900);
  EXPECT_TRUE(crypto::CheckRegisteredClaims(*claims, clock_.NowSeconds(), service_->options().issuer,
                                            service_->options().audience)
                  .ok());
}

TEST_P(IdentityServiceTest, UnknownEmailAndWrongPasswordLookTheSame) {
  MustRegister();
  auto wrong = service_->Login("ada@example.com", "not the password", "127.0.0.1");
  auto unknown = service_->Login("nobody@example.com", kPassword, "127.0.0.1");
  ASSERT_FALSE(wrong.ok());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(wrong.error().code, unknown.error().code);
  EXPECT_EQ(wrong.error().type, unknown.error().type);
  EXPECT_EQ(wrong.error().message, unknown.error().message);
}

TEST_P(IdentityServiceTest, RepeatedFailuresThrottleTheAccount) {
  MustRegister();
  for (int i = 0; i < 4; ++i) (void)service_->Login("ada@example.com", "wrong password!", "10.0.0.1");
  seconds wait{0};
  auto r = service_->Login("ada@example.com", kPassword, "10.0.0.2", &wait);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_GT(wait.count(), 0);
  clock_.Advance(wait);
  EXPECT_TRUE(service_->Login("ada@example.com", kPassword, "10.0.0.2").ok());
}

TEST_P(IdentityServiceTest, RefreshRotatesTheToken) {
  MustRegister();
  auto first = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  auto second = service_->Refresh(first.refresh_token);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE(second->refresh_token, first.refresh_token);
  EXPECT_TRUE(service_->Refresh(second->refresh_token).ok());
}

TEST_P(IdentityServiceTest, ReusingARefreshTokenRevokesTheFamily) {
  MustRegister();
  auto first = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  auto second = service_->Refresh(first.refresh_token).value();
  auto reuse = service_->Refresh(first.refresh_token);
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(reuse.error().type, "refresh-token-reused");
  // The legitimate holder's newer token is dead too.
  EXPECT_EQ(service_->Refresh(second.refresh_token).error().code, ErrorCode::kUnauthenticated);
}

TEST_P(IdentityServiceTest, OtherSessionsSurviveAReuse) {
  MustRegister();
  auto a = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  auto b = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  (void)service_->Refresh(a.refresh_token);
  (void)service_->Refresh(a.refresh_token);
  EXPECT_TRUE(service_->Refresh(b.refresh_token).ok());
}

TEST_P(IdentityServiceTest, ExpiredRefreshTokenIsRefused) {
  MustRegister();
  auto t = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  clock_.Advance(seconds(30 * 24 * 3600 + 1));
  EXPECT_EQ(service_->Refresh(t.refresh_token).error().type, "invalid-refresh-token");
}

TEST_P(IdentityServiceTest, UnknownRefreshTokenIsRefused) {
  EXPECT_EQ(service_->Refresh("no-such-token").error().code, ErrorCode::kUnauthenticated);
}

TEST_P(IdentityServiceTest, LogoutRevokesTheSession) {
  MustRegister();
  auto t = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  ASSERT_TRUE(service_->Logout(t.refresh_token).ok());
  EXPECT_EQ(service_->Refresh(t.refresh_token).error().code, ErrorCode::kUnauthenticated);
  EXPECT_TRUE(service_->Logout("unknown").ok());
}

TEST_P(IdentityServiceTest, EmailVerificationTokenIsSingleUse) {
  User u = MustRegister();
  std::string token = mailer_.Last("verify_email")->token;
  ASSERT_TRUE(service_->VerifyEmail(token).ok());
  EXPECT_TRUE(service_->GetUser(u.id)->email_verified_at_ms.has_value());
  EXPECT_EQ(service_->VerifyEmail(token).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IdentityServiceTest, EmailVerificationTokenExpires) {
  MustRegister();
  std::string token = mailer_.Last("verify_email")->token;
  clock_.Advance(seconds(48 * 3600 + 1));
  EXPECT_EQ(service_->VerifyEmail(token).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IdentityServiceTest, ForgotPasswordForUnknownEmailSendsNothingButSucceeds) {
  ASSERT_TRUE(service_->ForgotPassword("nobody@example.com").ok());
  EXPECT_FALSE(mailer_.Last("reset_password"));
}

TEST_P(IdentityServiceTest, ForgotPasswordAnswersTheSameWhenTheMailFails) {
  MustRegister();
  mailer_.fail = true;
  EXPECT_TRUE(service_->ForgotPassword("ada@example.com").ok());
  EXPECT_TRUE(service_->ForgotPassword("nobody@example.com").ok());
}

TEST_P(IdentityServiceTest, ResetPasswordChangesItAndEndsSessions) {
  MustRegister();
  auto session = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  ASSERT_TRUE(service_->ForgotPassword("ada@example.com").ok());
  std::string token = mailer_.Last("reset_password")->token;
  ASSERT_TRUE(service_->ResetPassword(token, "a brand new passphrase").ok());
  EXPECT_FALSE(service_->Login("ada@example.com", kPassword, "127.0.0.2").ok());
  EXPECT_TRUE(service_->Login("ada@example.com", "a brand new passphrase", "127.0.0.2").ok());
  EXPECT_FALSE(service_->Refresh(session.refresh_token).ok());
  EXPECT_EQ(service_->ResetPassword(token, "yet another passphrase").error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IdentityServiceTest, ResetWithWeakPasswordKeepsTheToken) {
  MustRegister();
  ASSERT_TRUE(service_->ForgotPassword("ada@example.com").ok());
  std::string token = mailer_.Last("reset_password")->token;
  EXPECT_EQ(service_->ResetPassword(token, "short").error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(service_->ResetPassword(token, "a brand new passphrase").ok());
}

TEST_P(IdentityServiceTest, ResetTokenExpiresAfterAnHour) {
  MustRegister();
  ASSERT_TRUE(service_->ForgotPassword("ada@example.com").ok());
  std::string token = mailer_.Last("reset_password")->token;
  clock_.Advance(seconds(3601));
  EXPECT_EQ(service_->ResetPassword(token, "a brand new passphrase").error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IdentityServiceTest, OnboardSellerAddsRoleAndEncryptsPayout) {
  User u = MustRegister();
  auto s = service_->OnboardSeller(u.id, "Ada's Attic", {"Ada Lovelace", "DE89 3704 0044 0532 0130 00"});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->HasRole("seller"));
  ASSERT_TRUE(s->seller);
  EXPECT_EQ(s->seller->payout_sealed.find("DE89"), std::string::npos);
  auto stored = service_->GetUser(u.id).value();
  auto payout = service_->PayoutDetailsOf(stored);
  ASSERT_TRUE(payout.ok());
  EXPECT_EQ(payout->iban, "DE89370400440532013000");
  EXPECT_EQ(CountOutbox("seller.onboarded"), 1);
  auto again = service_->OnboardSeller(u.id, "Again", {"Ada Lovelace", "DE89370400440532013000"});
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(CountOutbox("seller.onboarded"), 1);
}

TEST_P(IdentityServiceTest, OnboardSellerRefusesBadIban) {
  User u = MustRegister();
  auto s = service_->OnboardSeller(u.id, "Shop", {"Ada", "DE89370400440532013001"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(service_->GetUser(u.id)->HasRole("seller"));
}

TEST_P(IdentityServiceTest, RolesInTokenFollowOnboarding) {
  User u = MustRegister();
  ASSERT_TRUE(service_->OnboardSeller(u.id, "Shop", {"Ada", "GB82WEST12345698765432"}).ok());
  auto tokens = service_->Login("ada@example.com", kPassword, "127.0.0.1").value();
  auto claims = keys_->VerifyJwt(tokens.access_token).value();
  EXPECT_EQ(claims.at("roles").as_array().size(), 2u);
}

TEST_P(IdentityServiceTest, ReadsAfterWritesSeeTheWrites) {
  User u = MustRegister();
  EXPECT_EQ(service_->GetUser(u.id)->display_name, "Ada");  // now cached where caching is on
  ASSERT_TRUE(service_->UpdateDisplayName(u.id, "Ada L.").ok());
  EXPECT_EQ(service_->GetUser(u.id)->display_name, "Ada L.");
  ASSERT_TRUE(service_->VerifyEmail(mailer_.Last("verify_email")->token).ok());
  EXPECT_TRUE(service_->GetUser(u.id)->email_verified_at_ms.has_value());
  ASSERT_TRUE(service_->OnboardSeller(u.id, "Shop", {"Ada", "GB82WEST12345698765432"}).ok());
  EXPECT_TRUE(service_->GetUser(u.id)->HasRole("seller"));
}

TEST_P(IdentityServiceTest, ConcurrentReadsAndWritesNeverLeaveAStaleUser) {
  User u = MustRegister();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) (void)service_->GetUser(u.id);
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(service_->UpdateDisplayName(u.id, "Name " + std::to_string(i)).ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(service_->GetUser(u.id)->display_name, "Name 49");
}

TEST_P(IdentityServiceTest, CreateAdminHasAdminRole) {
  auto admin = service_->CreateAdmin("root@example.com", kPassword, "Root");
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->HasRole("admin"));
}

INSTANTIATE_TEST_SUITE_P(Drivers, IdentityServiceTest, db::testing::AllDialects(), db::testing::DialectParamName);

TEST(IsValidIban, ChecksumAndShape) {
  EXPECT_TRUE(IsValidIban("DE89370400440532013000"));
  EXPECT_TRUE(IsValidIban("gb82 west 1234 5698 7654 32"));
  EXPECT_FALSE(IsValidIban("DE89370400440532013001"));
  EXPECT_FALSE(IsValidIban("1234"));
  EXPECT_FALSE(IsValidIban("DE8937040044053201300!"));
}

}  // namespace
}  // namespace agora::identity
