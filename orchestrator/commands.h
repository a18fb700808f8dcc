// Subcommands that wrap the worker's torch-free libraries (eval, data fetch) and the
// report: kept apart from cli.cpp so the run-management commands stay readable.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace kdx {

void add_worker_side_commands(CLI::App& app);
// Runs whichever of those subcommands was parsed; returns the exit code.
int run_worker_side_command(CLI::App& app, const std::string& registry);

}  // namespace kdx
