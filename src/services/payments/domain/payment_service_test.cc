// The payment service over the real sandbox gateway (in process; its
// webhooks go nowhere here, so every outcome comes through the service's own
// calls or events handed to it), on SQLite and PostgreSQL.
#include "services/payments/domain/payment_service.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/db/db_testing.h"
#include "core/id.h"
#include "services/payments/ledger/ledger.h"
#include "services/payments/sandbox/gateway.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments {
namespace {

class PaymentServiceTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("payments", PaymentsMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("payments.sandbox", sandbox::GatewayMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("payments.domain", DomainMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("payments.events", events::Migrations()).ok());
    tokens_ = std::make_unique<SandboxTokenStore>(*db_);
    sandbox::GatewayOptions options;
    options.webhook_url = "http://127.0.0.1:9/unused";
    options.webhook_secret = "whsec_test";
    gateway_ = std::make_unique<sandbox::Gateway>(*db_, *tokens_, clock_, options);
    service_ = std::make_unique<PaymentService>(*db_, *gateway_, clock_);
  }
  void TearDown() override {
    service_.reset();
    gateway_.reset();
    tokens_.reset();
    db_.reset();
    scratch_.reset();
  }

  std::string Token(sandbox::Behavior b = sandbox::Behavior::kSucceed) {
    SandboxToken t{NewId("tok_"), {"visa", "4242", 12, 2040, b}, clock_.NowMillis()};
    EXPECT_TRUE(tokens_->Insert(t).ok());
    return t.id;
  }

  ChargeRequest Charge(std::string token, std::vector<Allocation> allocations) {
    return ChargeRequest{NewId("chk_"), "usr_buyer", std::move(token), "EUR", std::move(allocations)};
  }

  int64_t Balance(const std::string& account) { return ledger::Balance(*db_, account, "EUR").value(); }

  events::Event OrderEvent(std::string type, std::string order_id, int64_t amount = 0) {
    boost::json::object o{{"order_id", order_id}, {"reason", "test"}};
    if (amount > 0) o["amount"] = amount;
    return events::Event{events::NewEventId(), std::move(type), "orders", boost::json::serialize(o), 0, 0};
  }

  int64_t OutboxCount(const std::string& type) {
    auto rows = db_->Exec("t", "SELECT COUNT(*) FROM outbox_events WHERE type = $1", {type}).value();
    return rows[0].Int(0);
  }

  ManualClock clock_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<SandboxTokenStore> tokens_;
  std::unique_ptr<sandbox::Gateway> gateway_;
  std::unique_ptr<PaymentService> service_;
};

TEST_P(PaymentServiceTest, ACaptureLandsInEscrowPerOrderOnce) {
  auto req = Charge(Token(), {{"ord_a", "usr_s1", 3000, 1000}, {"ord_b", "usr_s2", 700, 500}});
  auto p = service_->Charge(req);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->status, PaymentStatus::kSucceeded);
  EXPECT_EQ(p->amount, 3700);
  EXPECT_EQ(p->amount_captured, 3700);
  EXPECT_EQ(Balance("buyer_payments"), -3700);
  EXPECT_EQ(Balance("escrow:ord_a"), 3000);
  EXPECT_EQ(Balance("escrow:ord_b"), 700);
  // Charging the same checkout again changes nothing.
  auto again = service_->Charge(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, p->id);
  EXPECT_EQ(Balance("buyer_payments"), -3700);
  EXPECT_EQ(OutboxCount("payment.succeeded"), 1);
  EXPECT_TRUE(ledger::Verify(*db_)->ok());
}

TEST_P(PaymentServiceTest, DeclinesFailWithoutMovingMoney) {
  auto p = service_->Charge(Charge(Token(sandbox::Behavior::kDecline), {{"ord_a", "usr_s", 1000, 1000}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, PaymentStatus::kFailed);
  EXPECT_EQ(p->failure_code, "card_declined");
  EXPECT_EQ(Balance("buyer_payments"), 0);
  EXPECT_EQ(OutboxCount("payment.failed"), 1);
  auto unknown = service_->Charge(Charge("tok_nobody", {{"ord_b", "usr_s", 1000, 1000}}));
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->failure_code, "invalid_payment_token");
}

TEST_P(PaymentServiceTest, ALostAnswerIsReconciledWithTheSameKey) {
  auto req = Charge(Token(sandbox::Behavior::kNetworkError), {{"ord_a", "usr_s", 1500, 1000}});
  auto p = service_->Charge(req);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, PaymentStatus::kProcessing);
  EXPECT_EQ(Balance("escrow:ord_a"), 0);
  auto settled = service_->PaymentForCheckout(req.checkout_id);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->status, PaymentStatus::kSucceeded);
  EXPECT_EQ(Balance("escrow:ord_a"), 1500);
  EXPECT_FALSE(settled->provider_intent_id.empty());
}

TEST_P(PaymentServiceTest, RefundsAndReleaseSplitTheEscrow) {
  auto p = service_->Charge(Charge(Token(), {{"ord_a", "usr_s", 10000, 1000}}));
  ASSERT_TRUE(p.ok());
  auto refund = OrderEvent("order.refund_requested", "ord_a", 2500);
  ASSERT_TRUE(service_->ApplyOrderEvent(refund).ok());
  ASSERT_TRUE(service_->ApplyOrderEvent(refund).ok());  // a redelivery refunds nothing more
  EXPECT_EQ(Balance("escrow:ord_a"), 7500);
  EXPECT_EQ(Balance("refunds"), 2500);
  EXPECT_EQ(OutboxCount("refund.created"), 1);
  // Another request (another event) refunds again.
  ASSERT_TRUE(service_->ApplyOrderEvent(OrderEvent("order.refund_requested", "ord_a", 1000)).ok());
  EXPECT_EQ(Balance("escrow:ord_a"), 6500);
  auto completed = OrderEvent("order.completed", "ord_a");
  ASSERT_TRUE(service_->ApplyOrderEvent(completed).ok());
  ASSERT_TRUE(service_->ApplyOrderEvent(completed).ok());
  EXPECT_EQ(Balance("escrow:ord_a"), 0);
  EXPECT_EQ(Balance("platform_commission"), 650);
  EXPECT_EQ(Balance("seller_payable:usr_s"), 5850);
  auto refunds = service_->RefundsForOrder("ord_a");
  ASSERT_TRUE(refunds.ok());
  EXPECT_EQ(refunds->size(), 2u);
  auto balance = service_->Balance("usr_s");
  ASSERT_TRUE(balance.ok());
  ASSERT_EQ(balance->available.size(), 1u);
  EXPECT_EQ(balance->available[0].amount, 5850);
  EXPECT_EQ(balance->pending[0].amount, 0);
  EXPECT_TRUE(ledger::Verify(*db_)->ok());
}

TEST_P(PaymentServiceTest, PayoutsPayWhatIsPayableOnce) {
  ASSERT_TRUE(service_->Charge(Charge(Token(), {{"ord_a", "usr_s", 2000, 500}})).ok());
  ASSERT_TRUE(service_->ApplyOrderEvent(OrderEvent("order.completed", "ord_a")).ok());
  auto run = service_->RunPayouts();
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->size(), 1u);
  EXPECT_EQ((*run)[0].amount, 1900);
  EXPECT_EQ((*run)[0].status, PayoutStatus::kPaid);
  EXPECT_EQ(Balance("seller_payable:usr_s"), 0);
  EXPECT_EQ(Balance("provider_cash"), 1900);
  auto second = service_->RunPayouts();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
  auto list = service_->Payouts("usr_s", 10);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
  EXPECT_EQ(OutboxCount("payout.paid"), 1);
}

TEST_P(PaymentServiceTest, ARefundBeforeTheCaptureWaits) {
  auto p = service_->Charge(Charge(Token(sandbox::Behavior::kRequiresAction), {{"ord_a", "usr_s", 900, 1000}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, PaymentStatus::kRequiresAction);
  EXPECT_FALSE(p->next_action_url.empty());
  Status s = service_->ApplyOrderEvent(OrderEvent("order.refund_requested", "ord_a"));
  EXPECT_FALSE(s.ok());  // the bus retries it later
  EXPECT_EQ(Balance("refunds"), 0);
}

TEST_P(PaymentServiceTest, ARefundTheProviderRefusesIsRecordedAndDoesNotBlock) {
  auto p = service_->Charge(Charge(Token(), {{"ord_a", "usr_s", 1000, 1000}, {"ord_b", "usr_s", 500, 1000}}));
  ASSERT_TRUE(p.ok());
  // Refunded at the provider behind Agora's back (a dashboard, a chargeback).
  ASSERT_TRUE(gateway_->Refund(p->provider_intent_id, 1500, "outside").ok());
  ASSERT_TRUE(service_->ApplyOrderEvent(OrderEvent("order.refund_requested", "ord_a")).ok());
  EXPECT_EQ(OutboxCount("refund.failed"), 1);
  EXPECT_EQ(Balance("escrow:ord_a"), 1000);  // nothing moved in the ledger
  // The next event is applied as usual.
  ASSERT_TRUE(service_->ApplyOrderEvent(OrderEvent("order.completed", "ord_b")).ok());
  EXPECT_EQ(Balance("escrow:ord_b"), 0);
}

TEST_P(PaymentServiceTest, AReplayedRefundRequestIsNotSentAgain) {
  auto p = service_->Charge(Charge(Token(), {{"ord_a", "usr_s", 1000, 1000}}));
  ASSERT_TRUE(p.ok());
  auto refund = OrderEvent("order.refund_requested", "ord_a", 600);
  ASSERT_TRUE(service_->ApplyOrderEvent(refund).ok());
  // Replayed after a restart: 400 is left now, but it was applied already.
  ASSERT_TRUE(service_->ApplyOrderEvent(refund).ok());
  EXPECT_EQ(Balance("refunds"), 600);
  EXPECT_EQ(OutboxCount("refund.failed"), 0);
}

INSTANTIATE_TEST_SUITE_P(Drivers, PaymentServiceTest, db::testing::AllDialects(), db::testing::DialectParamName);

}  // namespace
}  // namespace agora::payments
