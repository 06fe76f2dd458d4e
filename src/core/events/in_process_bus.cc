// The in-process Bus: a FIFO queue and a worker thread per consumer.

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/log.h"

#include "core/events/events.h"

namespace agora::events {
namespace {

class InProcessBus final : public Bus {
 public:
  explicit InProcessBus(InProcessBusOptions options) : options_(options) {}
  ~InProcessBus() override { Stop(); }

  Status Publish(const Event& event) override {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return Error::Unavailable("the event bus is stopped");
    }
    // Consumers only drain their queues, so a size seen here can only shrink
    // before the push below (Publish holds mu_).
    for (auto& c : consumers_) {
      if (event.type.compare(0, c->prefix.size(), c->prefix) != 0) {
        continue;
      }
      std::lock_guard qlock(c->mu);
      if (c->queue.size() >= options_.max_queue) {
        return Error::Unavailable("event consumer '" + c->name + "' is full");
      }
    }
    for (auto& c : consumers_) {
      if (event.type.compare(0, c->prefix.size(), c->prefix) != 0) {
        continue;
      }
      {
        std::lock_guard qlock(c->mu);
        c->queue.push_back(event);
      }
      c->cv.notify_one();
    }
    return Ok();
  }

  void Subscribe(std::string consumer, std::string type_prefix, Handler handler) override {
    std::lock_guard lock(mu_);
    assert(std::none_of(consumers_.begin(), consumers_.end(),
                        [&](const auto& c) { return c->name == consumer; }) &&
           "consumer names must be unique on a bus");
    auto c = std::make_unique<Consumer>();
    c->name = std::move(consumer);
    c->prefix = std::move(type_prefix);
    c->handler = std::move(handler);
    if (started_ && !stopping_) {
      c->thread = std::thread([this, p = c.get()] { Work(*p); });
    }
    consumers_.push_back(std::move(c));
  }

  void Start() override {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) {
      return;
    }
    started_ = true;
    for (auto& c : consumers_) {
      c->thread = std::thread([this, p = c.get()] { Work(*p); });
    }
  }

  void Stop() override {
    std::vector<Consumer*> consumers;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& c : consumers_) {
        consumers.push_back(c.get());
      }
    }
    for (Consumer* c : consumers) {
      {
        std::lock_guard qlock(c->mu);
        c->stop = true;
      }
      c->cv.notify_all();
    }
    for (Consumer* c : consumers) {
      if (c->thread.joinable() && c->thread.get_id() != std::this_thread::get_id()) {
        c->thread.join();
      }
    }
  }

 private:
  struct Consumer {
    std::string name;
    std::string prefix;
    Handler handler;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Event> queue;  // GUARDED_BY(mu)
    bool stop = false;        // GUARDED_BY(mu)
    std::thread thread;
  };

  void Work(Consumer& c) {
    int attempt = 0;
    std::chrono::milliseconds backoff = options_.retry_initial;
    for (;;) {
      Event event;
      {
        std::unique_lock lock(c.mu);
        c.cv.wait(lock, [&] { return c.stop || !c.queue.empty(); });
        if (c.stop) {
          return;
        }
        event = c.queue.front();
      }
      Status status;
      try {
        status = c.handler(event);
      } catch (const std::exception& e) {
        status = Error::Internal(std::string("handler threw: ") + e.what());
      } catch (...) {
        status = Error::Internal("handler threw");
      }
      if (status.ok()) {
        std::lock_guard lock(c.mu);
        c.queue.pop_front();
        attempt = 0;
        backoff = options_.retry_initial;
        continue;
      }
      ++attempt;
      if ((attempt & (attempt - 1)) == 0) {  // attempts 1, 2, 4, 8, ...: bounded log volume
        log::Warn("event handler failed; retrying", {{"consumer", c.name},
                                                      {"event_id", event.id},
                                                      {"event_type", event.type},
                                                      {"attempt", attempt},
                                                      {"code", ErrorCodeName(status.error().code)},
                                                      {"error", status.error().message},
                                                      {"retry_in_ms", backoff.count()}});
      }
      std::unique_lock lock(c.mu);
      if (c.cv.wait_for(lock, backoff, [&] { return c.stop; })) {
        return;
      }
      backoff = std::min(backoff * 2, options_.retry_max);
    }
  }

  const InProcessBusOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Consumer>> consumers_;  // GUARDED_BY(mu_) for additions
  bool started_ = false;                              // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<Bus> NewInProcessBus(InProcessBusOptions options) {
  return std::make_unique<InProcessBus>(options);
}

}  // namespace agora::events
