// oc: the OpenSandbox user CLI.
#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"oc: drive OpenSandbox projects, secrets and sandboxes", "oc"};
  app.require_subcommand(1);
  app.add_subcommand("version", "Print the oc version")->callback([] {
    std::cout << "oc " << OSB_VERSION << "\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
