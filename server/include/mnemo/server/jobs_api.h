#pragma once
// The job API (docs/server.md, "Jobs"): POST /v1/jobs (a job in YAML or JSON, the `mnemo run`
// schema), GET /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/events (SSE of the durable events,
// resumable with Last-Event-ID), POST /v1/jobs/{id}/cancel|resume|approve|deny. Jobs belong to the
// tenant of the key that created them; another tenant's job is 404.
#include <memory>

#include <mnemo/server/agent_hub.h>
#include <mnemo/server/router.h>

namespace mnemo::server {

void add_job_routes(Router& router, std::shared_ptr<AgentHub> hub);

}  // namespace mnemo::server
