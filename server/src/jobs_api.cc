// GCC 12 reports -Wmismatched-new-delete for Asio's coroutine frames: awaitable_frame_base has
// a class-specific operator new/delete pair (a recycling allocator) that the warning does not
// match across the inlined frame destruction. A known false positive of GCC 12, silenced
// for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <mnemo/server/jobs_api.h>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <string>
#include <utility>

#include "request_util.h"

namespace mnemo::server {

namespace json = boost::json;

namespace {

// Where a refusal goes: a missing job is 404, a job whose state forbids the action 409, a bad
// request 400.
http::status status_for(const Status& s, http::status invalid = http::status::bad_request) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return http::status::not_found;
    case StatusCode::kInvalidArgument:
      return invalid;
    case StatusCode::kUnsupported:
      return http::status::bad_request;
    case StatusCode::kPermissionDenied:
      return http::status::forbidden;
    default:
      return http::status::internal_server_error;
  }
}

std::string_view code_for(http::status s) {
  switch (s) {
    case http::status::not_found:
      return "not_found";
    case http::status::conflict:
      return "conflict";
    case http::status::bad_request:
      return "invalid_value";
    case http::status::forbidden:
      return "policy";
    default:
      return "";
  }
}

asio::awaitable<void> refuse(Exchange& ex, Status s,
                             http::status invalid = http::status::bad_request,
                             std::string param = {}) {
  const http::status st = status_for(s, invalid);
  auto op = ex.respond_error(st, s.message(), std::string(error_type_for(st)), std::move(param),
                             std::string(code_for(st)));
  co_await std::move(op);
}

// POST /v1/jobs: the body is the job (YAML or JSON); or a JSON object {"job": {...} or "YAML text",
// "inputs": {...}, "id": "..."}. Query parameters: id=ID, input.NAME=VALUE.
struct JobRequest {
  std::string spec_text;
  std::map<std::string, std::string> inputs;
  std::string id;
};

Result<JobRequest> read_job_request(const HttpRequest& req) {
  JobRequest out;
  for (auto& [k, v] : parse_query(req.target())) {
    if (k == "id") {
      out.id = v;
    } else if (k.rfind("input.", 0) == 0 && k.size() > 6) {
      out.inputs[k.substr(6)] = v;
    } else {
      return Status::invalid_argument("unknown query parameter " + k +
                                      " (expected id or input.NAME)");
    }
  }
  out.spec_text = req.body();
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (!ec && v.is_object() && v.as_object().contains("job")) {
    const json::object& o = v.as_object();
    for (const auto& [k, f] : o) {
      if (k != "job" && k != "inputs" && k != "id")
        return Status::invalid_argument("unknown field " + std::string(k) +
                                        " (expected job, inputs, id)");
    }
    const json::value& job = o.at("job");
    if (job.is_string()) {
      out.spec_text = std::string(job.get_string());
    } else if (job.is_object()) {
      out.spec_text = json::serialize(job);
    } else {
      return Status::invalid_argument("job must be an object or a YAML string");
    }
    if (const json::value* in = o.if_contains("inputs")) {
      if (!in->is_object()) return Status::invalid_argument("inputs must be an object");
      for (const auto& [k, f] : in->get_object()) {
        if (!f.is_string())
          return Status::invalid_argument("inputs." + std::string(k) + " must be a string");
        out.inputs[std::string(k)] = std::string(f.get_string());
      }
    }
    if (const json::value* id = o.if_contains("id")) {
      if (!id->is_string()) return Status::invalid_argument("id must be a string");
      out.id = std::string(id->get_string());
    }
  }
  if (!out.id.empty() && !valid_session_id(out.id))
    return Status::invalid_argument(std::string(kIdRule));
  return out;
}

asio::awaitable<void> create_job(std::shared_ptr<AgentHub> hub, Exchange& ex) {
  auto request = read_job_request(ex.request());
  if (!request) {
    auto op = refuse(ex, request.status());
    co_await std::move(op);
    co_return;
  }
  auto spec = agent::parse_job_spec(request->spec_text, "job");
  if (!spec) {
    auto op = refuse(ex, Status::invalid_argument(spec.status().message()));
    co_await std::move(op);
    co_return;
  }
  const std::string public_id =
      request->id.empty() ? agent::new_job_id(spec->name) : request->id;
  const std::string id = AgentHub::store_id(ex.tenant(), public_id);
  if (auto input = agent::render_input(*spec, request->inputs); !input) {
    auto op = refuse(ex, Status::invalid_argument(input.status().message()), http::status::bad_request,
                     "inputs");
    co_await std::move(op);
    co_return;
  }
  // Ids are the tenant's own: another tenant's job of the same id is not this one.
  if (hub->store().session(id)) {
    auto op = refuse(ex, Status::invalid_argument("job " + public_id + " already exists"),
                     http::status::conflict, "id");
    co_await std::move(op);
    co_return;
  }
  agent::NewJob job;
  job.spec = std::move(spec).value();
  job.spec_yaml = request->spec_text;
  job.spec_file = "POST /v1/jobs";
  job.inputs = request->inputs;
  job.id = id;
  job.tenant = ex.tenant();
  auto start = hub->start(std::move(job));
  Result<std::string> started = co_await std::move(start);
  if (!started) {
    auto op = refuse(ex, started.status());
    co_await std::move(op);
    co_return;
  }
  auto state = hub->load(*started);
  if (!state) {
    auto op = refuse(ex, state.status());
    co_await std::move(op);
    co_return;
  }
  auto op = ex.respond_json(http::status::created, hub->job_json(*state, false));
  co_await std::move(op);
}

asio::awaitable<void> list_jobs(std::shared_ptr<AgentHub> hub, Exchange& ex) {
  auto ids = hub->store().list_sessions();
  if (!ids) {
    auto op = refuse(ex, ids.status());
    co_await std::move(op);
    co_return;
  }
  json::array data;
  for (const std::string& id : *ids) {
    if (!hub->find(id, ex.tenant())) continue;
    auto state = hub->load(id);
    if (!state) continue;
    data.push_back(json::parse(hub->job_json(*state, false)));
  }
  auto op = ex.respond_json(http::status::ok,
                            json::serialize(json::object{{"object", "list"}, {"data", data}}));
  co_await std::move(op);
}

asio::awaitable<void> get_job(std::shared_ptr<AgentHub> hub, Exchange& ex) {
  const std::string id = hub->locate(ex.tenant(), ex.param("id"));
  if (auto info = hub->find(id, ex.tenant()); !info) {
    auto op = refuse(ex, Status::not_found("no job " + std::string(ex.param("id"))));
    co_await std::move(op);
    co_return;
  }
  auto state = hub->load(id);
  if (!state) {
    auto op = refuse(ex, state.status());
    co_await std::move(op);
    co_return;
  }
  auto op = ex.respond_json(http::status::ok, hub->job_json(*state, true));
  co_await std::move(op);
}

// Unsubscribes a feed when the handler ends, however it ends.
struct Watch {
  std::shared_ptr<AgentHub> hub;
  std::string id;
  std::shared_ptr<Feed> feed;
  ~Watch() {
    feed->close();
    hub->unsubscribe(id, feed.get());
  }
};

asio::awaitable<void> job_events(std::shared_ptr<AgentHub> hub, Exchange& ex) {
  const std::string id = hub->locate(ex.tenant(), ex.param("id"));
  auto info = hub->find(id, ex.tenant());
  if (!info) {
    auto op = refuse(ex, Status::not_found("no job " + std::string(ex.param("id"))));
    co_await std::move(op);
    co_return;
  }
  uint64_t after = 0;
  bool live = false;
  std::string last_id(ex.request()["Last-Event-ID"]);
  for (auto& [k, v] : parse_query(ex.request().target())) {
    if (k == "after") last_id = last_id.empty() ? v : last_id;
    if (k == "live") live = v == "1" || v == "true";
  }
  if (!last_id.empty()) {
    auto n = parse_u64(last_id);
    if (!n) {
      auto op = refuse(ex, Status::invalid_argument("Last-Event-ID must be an event seq, not " +
                                                    last_id));
      co_await std::move(op);
      co_return;
    }
    after = *n;
  }
  auto executor = co_await asio::this_coro::executor;
  auto feed = std::make_shared<Feed>(executor, hub->store());
  Watch w{hub, id, feed};
  w.feed->watch(id, after, live);
  hub->subscribe(id, w.feed);
  auto begin = ex.begin_stream(http::status::ok, "text/event-stream");
  if (!co_await std::move(begin)) co_return;
  // A finished job with nothing after `after` has nothing more to say.
  if (auto state = hub->load(id); state && state->finished && state->last_seq <= after) {
    auto end = ex.end_stream();
    co_await std::move(end);
    co_return;
  }
  for (;;) {
    auto next = w.feed->next(std::chrono::seconds(15));
    auto batch = co_await std::move(next);
    std::string chunk;
    bool finished = false;
    for (const auto& m : batch) {
      if (m->durable) {
        chunk += "id: " + std::to_string(m->seq) + "\nevent: " + m->type + "\ndata: " + m->payload +
                 "\n\n";
        finished = finished || m->type == "run.finished";
      } else if (!m->type.empty()) {
        chunk += "event: " + m->type + "\ndata: " + m->envelope + "\n\n";
      }
      if (finished) break;
    }
    if (finished) {
      // The same commit may hold events after run.finished (step.committed): send them too.
      uint64_t last = 0;
      for (const auto& m : batch) last = m->durable ? std::max(last, m->seq) : last;
      if (auto more = hub->store().read_events(id, last)) {
        for (const memory::Event& e : *more) {
          HubMessage m = durable_message(id, e);
          chunk += "id: " + std::to_string(m.seq) + "\nevent: " + m.type + "\ndata: " + m.payload +
                   "\n\n";
        }
      }
    }
    if (chunk.empty()) chunk = ": keep-alive\n\n";
    auto write = ex.write_chunk(std::move(chunk));
    if (!co_await std::move(write)) co_return;
    if (finished) break;
  }
  auto end = ex.end_stream();
  co_await std::move(end);
}

enum class Action { kCancel, kResume, kApprove, kDeny };

asio::awaitable<void> job_action(std::shared_ptr<AgentHub> hub, Exchange& ex, Action action) {
  const std::string id = hub->locate(ex.tenant(), ex.param("id"));
  if (auto info = hub->find(id, ex.tenant()); !info) {
    auto op = refuse(ex, Status::not_found("no job " + std::string(ex.param("id"))));
    co_await std::move(op);
    co_return;
  }
  Status s;
  if (action == Action::kCancel) {
    auto op = hub->cancel(id);
    s = co_await std::move(op);
  } else if (action == Action::kResume) {
    auto op = hub->resume(id);
    s = co_await std::move(op);
  } else {
    boost::system::error_code ec;
    json::value body = json::parse(ex.request().body(), ec);
    const json::value* call = (!ec && body.is_object()) ? body.as_object().if_contains("call_id")
                                                         : nullptr;
    if (!call || !call->is_string() || call->get_string().empty()) {
      auto op = refuse(ex, Status::invalid_argument(
                               "the body must be {\"call_id\": \"...\"} (the call waiting for an "
                               "approval, see pending_approvals)"),
                       http::status::bad_request, "call_id");
      co_await std::move(op);
      co_return;
    }
    auto op = hub->decide(id, std::string(call->get_string()), action == Action::kApprove,
                          "api:" + ex.tenant());
    s = co_await std::move(op);
  }
  if (!s) {
    auto op = refuse(ex, s, http::status::conflict);
    co_await std::move(op);
    co_return;
  }
  auto state = hub->load(id);
  if (!state) {
    auto op = refuse(ex, state.status());
    co_await std::move(op);
    co_return;
  }
  const bool background = action != Action::kCancel && hub->running(id);
  auto op = ex.respond_json(background ? http::status::accepted : http::status::ok,
                            hub->job_json(*state, false));
  co_await std::move(op);
}

}  // namespace

void add_job_routes(Router& router, std::shared_ptr<AgentHub> hub) {
  router.add(http::verb::post, "/v1/jobs", [hub](Exchange& ex) { return create_job(hub, ex); });
  router.add(http::verb::get, "/v1/jobs", [hub](Exchange& ex) { return list_jobs(hub, ex); });
  router.add(http::verb::get, "/v1/jobs/{id}", [hub](Exchange& ex) { return get_job(hub, ex); });
  router.add(http::verb::get, "/v1/jobs/{id}/events",
             [hub](Exchange& ex) { return job_events(hub, ex); });
  const std::pair<const char*, Action> actions[] = {{"cancel", Action::kCancel},
                                                    {"resume", Action::kResume},
                                                    {"approve", Action::kApprove},
                                                    {"deny", Action::kDeny}};
  for (const auto& [name, action] : actions) {
    const Action a = action;
    router.add(http::verb::post, std::string("/v1/jobs/{id}/") + name,
               [hub, a](Exchange& ex) { return job_action(hub, ex, a); });
  }
}

}  // namespace mnemo::server
