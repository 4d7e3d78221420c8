// OTP's `<app>[-<vsn>]` directory rule: which application a directory belongs to.
//
// Thread safety: a pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace codestore::base {

// The application name of a directory as OTP's code server gives it (code_server:get_name/1,
// behind code:lib_dir/1, code:priv_dir/1, code:del_path/1 and code:replace_path/2): the last
// path component before a final "ebin" (else the last component), cut at its *first* '-'.
// Components are filename:split/1's, so a trailing '/' changes nothing.
//   "/x/foo-1.0/ebin" -> "foo"   "foo-bar-1.0" -> "foo"   "foo-1.0-rc1" -> "foo"
//   "foo-abc" -> "foo"           "foo-" -> "foo"          "foo" -> "foo"   "x/ebin" -> "x"
// OTP splits at the *last* '-' only where it orders versions of one application
// (code_server:choose_bundles/1); the name an application goes by is this one.
std::string app_name(std::string_view dir);

}  // namespace codestore::base
