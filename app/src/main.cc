#include <mnemo/base/build_config.h>
#include <mnemo/kernels/cpu_features.h>

#include <cstdio>
#include <iostream>

#include "commands.h"

namespace mnemo::app {
int fail(std::string_view message) {
  std::cerr << "mnemo: " << message << '\n';
  return 1;
}
}  // namespace mnemo::app

int main(int argc, char** argv) {
  CLI::App app{"mnemo: an agent runtime with persistent long-context memory", "mnemo"};
  // What runs the engine: the CPU kernels this machine selects. CUDA kernels do not exist yet, so
  // a build with the CUDA toolkit says no more than that.
  app.set_version_flag("--version", [] {
    return std::string("mnemo ") + MNEMO_VERSION + " (engine: CPU kernels, " +
           std::string(mnemo::kernels::isa_name(mnemo::kernels::active_isa())) +
           (MNEMO_CUDA ? "; CUDA toolkit found, no CUDA kernels yet)" : ")");
  });
  app.require_subcommand(1);
  mnemo::app::CommandContext ctx;
  mnemo::app::register_tokenize_command(app, ctx);
  mnemo::app::register_chat_commands(app, ctx);
  mnemo::app::register_bench_commands(app, ctx);
  mnemo::app::register_model_commands(app, ctx);
  mnemo::app::register_forward_command(app, ctx);
  mnemo::app::register_generate_command(app, ctx);
  mnemo::app::register_sandbox_commands(app, ctx);
  mnemo::app::register_sandbox_bench(*app.get_subcommand("bench"), ctx);
  mnemo::app::register_store_commands(app, ctx);
  mnemo::app::register_resume_bench(*app.get_subcommand("bench"), ctx);
  mnemo::app::register_engine_benches(*app.get_subcommand("bench"), ctx);
  mnemo::app::register_agent_bench(*app.get_subcommand("bench"), ctx);
  mnemo::app::register_ws_bench(*app.get_subcommand("bench"), ctx);
  mnemo::app::register_device_command(app, ctx);
  mnemo::app::register_run_commands(app, ctx);
  mnemo::app::register_jobs_commands(app, ctx);
  mnemo::app::register_serve_command(app, ctx);
  mnemo::app::register_keys_commands(app, ctx);
  if (argc <= 1) {  // a bare `mnemo`: what it can do
    std::cout << app.help();
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "mnemo: " << e.what() << " (see --help)\n";
    return e.get_exit_code() == 0 ? 2 : e.get_exit_code();
  }
  return ctx.exit_code;
}
