// oc: the OpenSandbox user CLI. Everything lives in osb_cli (src/cli/).
#include "cli/app.h"

int main(int argc, char** argv) { return osb::cli::RunOc(argc, argv); }
