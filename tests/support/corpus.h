// The real-image corpus: the .beam files of the Erlang/OTP and Elixir installed on this
// machine, which the acceptance tests compare against Erlang's own answers.
//
// Thread safety: free functions; thread-safe.
#pragma once

#include <string>
#include <vector>

namespace codestore::testing {

// The library roots that exist: OTP's (/usr/lib/erlang/lib) and Elixir's
// (/usr/lib/elixir/lib). Empty when neither is installed.
std::vector<std::string> real_image_roots();

// Every regular .beam file in a directory named ebin under `roots` (any depth: OTP's
// examples/ebin too), sorted. Empty when none is installed.
std::vector<std::string> real_images(const std::vector<std::string>& roots = real_image_roots());

}  // namespace codestore::testing
