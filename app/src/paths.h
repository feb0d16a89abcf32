#pragma once
// Default locations (DESIGN.md, "Where things live"): MNEMO_HOME holds store/ and models/.
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

#include <mnemo/base/status.h>

namespace mnemo::app {

// $MNEMO_HOME, else $XDG_DATA_HOME/mnemo, else ~/.local/share/mnemo.
std::string mnemo_home();
// MNEMO_HOME/models/tiny: the default embedded model.
std::string default_model_dir();
// The tokenizer.json a command uses: --tokenizer, else DIR/tokenizer.json of --model, else that of the
// default model (created on first use). The error names what is missing.
Result<std::string> resolve_tokenizer(const std::string& tokenizer, const std::string& model);

// The mnemo source tree (vocabulary files, benchmark scripts): the first of $MNEMO_SOURCE_DIR, the
// executable's ancestors and the source directories of CMake build trees among them, and the current
// directory's ancestors, that holds every path in `required`.
Result<std::filesystem::path> find_source_tree(std::initializer_list<std::string_view> required);

}  // namespace mnemo::app
