// Test-only helpers: a fresh, empty database per test on either dialect, so
// a store's test suite can run on SQLite and on PostgreSQL.
//
//   class MyStoreTest : public ::testing::TestWithParam<db::Dialect> {
//     void SetUp() override {
//       if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
//       scratch_.emplace(GetParam());
//       db_ = std::move(db::Database::Open(scratch_->options()).value());
//     }
//   };
//   INSTANTIATE_TEST_SUITE_P(Drivers, MyStoreTest, db::testing::AllDialects(),
//                            db::testing::DialectParamName);
//
// PostgreSQL tests need AGORA_TEST_DATABASE_URL (scripts/test sets it, with a
// throwaway server from scripts/lib/pg.sh); without it they are skipped.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "core/db/db.h"

namespace agora::db::testing {

inline constexpr const char* kDatabaseUrlEnv = "AGORA_TEST_DATABASE_URL";

// Why tests on `d` cannot run here, or "" when they can.
inline std::string SkipReason(Dialect d) {
  if (d == Dialect::kPostgres) {
    const char* url = std::getenv(kDatabaseUrlEnv);
    if (url == nullptr || *url == '\0') {
      return std::string(kDatabaseUrlEnv) +
             " is not set: run scripts/test (it starts a throwaway PostgreSQL) to run the "
             "PostgreSQL variants";
    }
  }
  return "";
}

inline auto AllDialects() { return ::testing::Values(Dialect::kSqlite, Dialect::kPostgres); }

inline std::string DialectParamName(const ::testing::TestParamInfo<Dialect>& info) {
  return DialectName(info.param);
}

// One test's database: a file in a new temp directory (SQLite) or a new
// schema in the test database (PostgreSQL). The destructor deletes it;
// destroy the Databases opened on it first.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(Dialect d) : dialect_(d) {
    static std::atomic<int> counter{0};
    std::random_device rd;
    std::string tag = std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                      std::to_string(rd() % 1000000);
    if (d == Dialect::kSqlite) {
      std::string tmpl =
          (std::filesystem::temp_directory_path() / "agora-db-test-XXXXXX").string();
      char* made = ::mkdtemp(tmpl.data());
      if (made == nullptr) {
        ADD_FAILURE() << "mkdtemp failed";
      }
      dir_ = tmpl;
      options_.url = "sqlite:" + (std::filesystem::path(dir_) / "test.db").string();
    } else {
      const char* url = std::getenv(kDatabaseUrlEnv);
      options_.url = url != nullptr ? url : "";
      options_.schema = "t_" + tag;
    }
  }

  ~ScratchDatabase() {
    if (dialect_ == Dialect::kSqlite) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    } else {
      Options admin;
      admin.url = options_.url;
      admin.pool_size = 1;
      if (auto db = Database::Open(admin); db.ok()) {
        (void)(*db)->Exec("test.drop_schema",
                          "DROP SCHEMA IF EXISTS \"" + options_.schema + "\" CASCADE");
      }
    }
  }

  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  const Options& options() const { return options_; }
  Dialect dialect() const { return dialect_; }

 private:
  Dialect dialect_;
  Options options_;
  std::string dir_;
};

}  // namespace agora::db::testing
