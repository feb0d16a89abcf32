#pragma once
// The server's figures in the Prometheus text format (GET /metrics): requests by status code, live
// sessions, active requests, generated tokens, completion latency, the store's size.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mnemo::server {

class Router;

class Metrics {
 public:
  // Upper bounds (seconds) of the mnemo_request_seconds histogram's buckets, +Inf aside.
  static constexpr std::array<double, 10> kLatencyBuckets = {0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,  1,     2.5,  5,   10};

  void count_response(unsigned status);
  void request_started() { ++active_requests_; }
  void request_finished() { --active_requests_; }
  // One model request (a chat completion) from submission to its last token.
  void observe_request_seconds(double seconds);
  void add_generated_tokens(int64_t n) { generated_tokens_ += n; }
  // Gauges read at scrape time; unset ones read 0.
  void set_sessions_source(std::function<int64_t()> source);
  void set_store_bytes_source(std::function<int64_t()> source);
  // Another gauge read at scrape time (mnemo_ws_connections, mnemo_jobs_running, ...).
  void add_gauge(std::string name, std::string help, std::function<int64_t()> source);
  // A counter read at scrape time (mnemo_ws_events_replayed_total, ...).
  void add_counter(std::string name, std::string help, std::function<int64_t()> source);

  int64_t active_requests() const { return active_requests_; }
  int64_t generated_tokens() const { return generated_tokens_; }
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<unsigned, int64_t> responses_;
  std::array<int64_t, kLatencyBuckets.size() + 1> buckets_{};
  double latency_sum_ = 0;
  int64_t latency_count_ = 0;
  std::function<int64_t()> sessions_, store_bytes_;
  struct Gauge {
    std::string name, help;
    std::function<int64_t()> source;
    bool counter = false;
  };
  std::vector<Gauge> gauges_;
  std::atomic<int64_t> active_requests_{0};
  std::atomic<int64_t> generated_tokens_{0};
};

// GET /healthz ("ok") and GET /metrics, both open (no API key).
void add_health_routes(Router& router, std::shared_ptr<Metrics> metrics);

}  // namespace mnemo::server
