// hawq-bench command line: run a sweep, validate, list plugins, report, train.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "hawq/cli.h"

int main(int argc, char** argv) { return hawq::cli_main(argc, argv); }
