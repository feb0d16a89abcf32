#pragma once
// Default locations (DESIGN.md, "Where things live"): MNEMO_HOME holds store/ and models/.
#include <string>

namespace mnemo::app {

// $MNEMO_HOME, else $XDG_DATA_HOME/mnemo, else ~/.local/share/mnemo.
std::string mnemo_home();
// MNEMO_HOME/models/tiny: the default embedded model.
std::string default_model_dir();
// The tokenizer.json a command uses: --tokenizer, else DIR/tokenizer.json of --model, else of the
// default model. Empty and an error message when none exists.
std::string resolve_tokenizer(const std::string& tokenizer, const std::string& model, std::string& error);

}  // namespace mnemo::app
