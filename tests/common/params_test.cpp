// The parameter table's checks of list-valued fields (conv.kernels, conv.channels), as the
// YAML reader and the worker's run.json reader meet them.
#include "common/params.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace kdx {
namespace {

std::string error_of(const nlohmann::json& params) {
  try {
    validate_params(student_params(), params, "run.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Params, ConvListsOfIntegers) {
  EXPECT_EQ(
      error_of({{"conv", {{"kernels", {1, 3, 5}}, {"channels", {768, 384}}, {"dropout", 0.1}}}}),
      "(no error)");
  EXPECT_EQ(error_of({{"conv", {{"channels", nlohmann::json::array()}}}}), "(no error)");
  EXPECT_EQ(error_of({{"conv", {{"channels", 768}}}}),
            "run.json: params.conv: channels: expected a list of integers, got an integer");
  EXPECT_EQ(error_of({{"conv", {{"channels", {768, "wide"}}}}}),
            "run.json: params.conv: channels[1]: expected an integer, got a string");
  EXPECT_EQ(error_of({{"conv", {{"kernels", {1, 0}}}}}),
            "run.json: params.conv: kernels[1]: must be between 1 and 63, got 0");
  EXPECT_EQ(error_of({{"conv", {{"channels", {2.5}}}}}),
            "run.json: params.conv: channels[0]: expected an integer, got a number");
  EXPECT_EQ(error_of({{"conv", {{"width", 3}}}}),
            "run.json: params.conv: unknown key 'width' (expected one of: kernels, channels, "
            "dropout)");
  EXPECT_EQ(error_of({{"attention_dropout", 1.5}}),
            "run.json: params.attention_dropout: must be between 0 and 0.99, got 1.5");
  const ParamDef* kernels = find_param(student_params(), "conv.kernels");
  ASSERT_NE(kernels, nullptr);
  EXPECT_EQ(type_name(kernels->type), "a list of integers");
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

// Issue 22: time limits that wrapped (a teacher killed as TIMEOUT after 1.2 s) and memory
// sizes that reached #SBATCH --mem= unchecked.
TEST(Params, ResourceTimesAndSizesParseWithoutWrapping) {
  EXPECT_EQ(parse_time_limit("90"), 5400);
  EXPECT_EQ(parse_time_limit("1:30"), 90);
  EXPECT_EQ(parse_time_limit("2:00:00"), 7200);
  EXPECT_EQ(parse_time_limit("1-12"), 86400 + 12 * 3600);
  EXPECT_EQ(parse_time_limit("307445734561825860:17"), -2);
  EXPECT_EQ(parse_time_limit("99999999999999-00:00:00"), -2);
  EXPECT_EQ(parse_time_limit("1:2:3:4"), -1);
  EXPECT_EQ(parse_time_limit("x"), -1);
  EXPECT_EQ(parse_mem_mb("4G"), 4096);
  EXPECT_EQ(parse_mem_mb("1K"), 1);
  EXPECT_EQ(parse_mem_mb("9223372036854775807"), -2);
  EXPECT_EQ(parse_mem_mb("4Q"), -1);
  auto def = [](const char* name) { return *find_param(resource_params(), name); };
  EXPECT_EQ(check_param(def("time"), "307445734561825860:17"),
            "must be between 0:00:01 and 365-00:00:00, got '307445734561825860:17' (too large)");
  EXPECT_EQ(check_param(def("time"), 4294967297),
            "must be between 0:00:01 and 365-00:00:00, got '4294967297'");
  EXPECT_EQ(check_param(def("time"), "0"), "must be between 0:00:01 and 365-00:00:00, got '0'");
  EXPECT_EQ(check_param(def("time"), "soon"),
            "'soon' is not a time limit (MM, HH:MM:SS, D-HH:MM:SS)");
  EXPECT_EQ(check_param(def("time"), 90), "");
  for (auto m : {"1K", "0", "0G"})
    EXPECT_EQ(check_param(def("mem"), m),
              std::string("must be between 64M and 64T, got '") + m + "'");
  EXPECT_EQ(check_param(def("mem"), "9223372036854775807"),
            "must be between 64M and 64T, got '9223372036854775807' (too large)");
  EXPECT_EQ(check_param(def("mem"), "64T"), "");
  EXPECT_EQ(check_param(def("cpus"), 4294967297), "must be between 1 and 4096, got 4294967297");
  EXPECT_EQ(check_param(def("mem"), nlohmann::json::array()),
            "expected a memory size (500M, 4G), got a list");
}

}  // namespace
}  // namespace kdx
