#include "app/config.h"

#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

namespace agora::app {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/agora-config-test.toml";
    unsetenv("AGORA_LISTEN");
    unsetenv("AGORA_MAX_BODY_BYTES");
  }
  void TearDown() override {
    unsetenv("AGORA_LISTEN");
    unsetenv("AGORA_MAX_BODY_BYTES");
  }
  void WriteFile(const std::string& text) { std::ofstream(path_) << text; }

  // Parses `args` as `agora serve ARGS`, then applies the config file.
  Status Parse(std::vector<std::string> args) {
    CLI::App cli;
    CLI::App* serve = cli.add_subcommand("serve");
    AddServeOptions(*serve, config_);
    std::vector<std::string> argv_s{"agora", "serve"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    cli.parse(static_cast<int>(argv.size()), argv.data());
    return config_.config_file.empty() ? Ok() : ApplyConfigFile(*serve, config_.config_file);
  }

  std::string path_;
  ServeConfig config_;
};

TEST_F(ConfigTest, DefaultsNeedNothing) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.listen, "127.0.0.1:8080");
  EXPECT_EQ(config_.data_dir, "./data");
  EXPECT_EQ(config_.max_body_bytes, 1024u * 1024u);
}

TEST_F(ConfigTest, FileSetsWhatNothingElseSets) {
  WriteFile("listen = \"127.0.0.1:9001\"\nmax-body-bytes = 4096\n");
  ASSERT_TRUE(Parse({"--config", path_}).ok());
  EXPECT_EQ(config_.listen, "127.0.0.1:9001");
  EXPECT_EQ(config_.max_body_bytes, 4096u);
}

TEST_F(ConfigTest, EnvironmentBeatsFileAndFlagBeatsEnvironment) {
  WriteFile("listen = \"127.0.0.1:9001\"\nmax-body-bytes = 4096\n");
  setenv("AGORA_LISTEN", "127.0.0.1:9002", 1);
  setenv("AGORA_MAX_BODY_BYTES", "8192", 1);
  ASSERT_TRUE(Parse({"--config", path_, "--max-body-bytes", "2048"}).ok());
  EXPECT_EQ(config_.listen, "127.0.0.1:9002");
  EXPECT_EQ(config_.max_body_bytes, 2048u);
}

TEST_F(ConfigTest, UnknownKeyIsRefused) {
  WriteFile("listen = \"127.0.0.1:9001\"\nlisten_port = 3\n");
  Status s = Parse({"--config", path_});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("listen_port"), std::string::npos);
}

TEST_F(ConfigTest, OutOfRangeValueInFileIsRefused) {
  WriteFile("max-body-bytes = 1\n");
  EXPECT_FALSE(Parse({"--config", path_}).ok());
}

TEST_F(ConfigTest, MissingFileIsRefused) {
  config_.config_file.clear();
  EXPECT_FALSE(Parse({"--config", "/nonexistent/agora.toml"}).ok());
}

TEST_F(ConfigTest, TrustedProxiesMustBeIpAddresses) {
  ASSERT_TRUE(Parse({"--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1"}).ok());
  EXPECT_EQ(config_.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_THROW((void)Parse({"--trusted-proxy", "a:b"}), CLI::ValidationError);
  EXPECT_THROW((void)Parse({"--trusted-proxy", "proxy.local"}), CLI::ValidationError);
}

TEST(SplitHostPort, AcceptsHostAndPortOnly) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(SplitHostPort("127.0.0.1:0", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  EXPECT_TRUE(SplitHostPort("[::1]:8080", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(SplitHostPort("nonsense", host, port));
  EXPECT_FALSE(SplitHostPort("127.0.0.1:99999", host, port));
  EXPECT_FALSE(SplitHostPort("127.0.0.1:", host, port));
}

}  // namespace
}  // namespace agora::app
