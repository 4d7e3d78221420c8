#include <codestore/status.h>

namespace codestore {

std::string_view code_name(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kCorruption: return "corruption";
    case Code::kNotSupported: return "not supported";
    case Code::kIOError: return "io error";
    case Code::kBusy: return "busy";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kLimitExceeded: return "limit exceeded";
    case Code::kInternal: return "internal";
    case Code::kCancelled: return "cancelled";
  }
  return "unknown";
}

Status::Status(Code code, std::string message) : Status(code, std::string_view(), std::move(message)) {}

Status::Status(Code code, std::string_view reason, std::string message)
    : rep_(new Rep{code, std::string(reason), std::move(message), std::nullopt}) {}

Status::Status(const Status& other) : rep_(other.rep_ ? new Rep(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_.reset(other.rep_ ? new Rep(*other.rep_) : nullptr);
  return *this;
}

const std::string& Status::message() const noexcept {
  static const std::string kNone;
  return rep_ ? rep_->message : kNone;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s(code_name(code()));
  if (!message().empty()) {
    s += ": ";
    s += message();
  }
  return s;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  Status s(*this);
  std::string m(context);
  if (!message().empty()) {
    m += ": ";
    m += message();
  }
  s.rep_->message = std::move(m);
  return s;
}

Status Status::with_reason(std::string_view reason) const {
  Status s(*this);
  if (s.rep_) s.rep_->reason = std::string(reason);
  return s;
}

Status Status::with_where(Where where) const {
  Status s(*this);
  if (s.rep_) s.rep_->where = std::move(where);
  return s;
}

}  // namespace codestore
