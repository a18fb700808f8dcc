// Leveled, timestamped logging for kdx and kdx-worker (spdlog), on standard error. The
// level comes from --log-level, else $KDX_LOG_LEVEL, else info. Under data parallelism
// every worker line carries its rank ("rank 1/2"), so interleaved logs stay readable and
// `kdx logs --rank` can pick one rank out. What a user or a script must match exactly (a
// final "kdx-worker: error: ..." line, a command's own output) is printed plainly instead.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace kdx::log {

// trace | debug | info | warning | error | off. Throws kdx::Error for another name.
spdlog::level::level_enum parse_level(const std::string& name);

// Sets the process's logger: `program` in every line, the level from `level_option` (empty
// = $KDX_LOG_LEVEL, else info). Safe to call again (the launcher's ranks do).
void init(const std::string& program, const std::string& level_option = "");

// Worker ranks: adds "rank R/W" to every line when W > 1.
void set_rank(int rank, int world);

// The level init() chose, as a name (for passing on to child processes).
std::string level_name();

}  // namespace kdx::log
