// Entry point of the hawq-bench command line (framework/src/cli).
#pragma once

namespace hawq {
int cli_main(int argc, char** argv);
}  // namespace hawq
