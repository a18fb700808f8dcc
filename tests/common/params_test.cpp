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
