#include "common/stream_limits.h"

#include "absl/strings/str_cat.h"

namespace rapport {

absl::Status StreamLimits::Enter(const std::string& caller) {
  absl::MutexLock lock(&mu_);
  auto it = by_caller_.find(caller);
  const int mine = it == by_caller_.end() ? 0 : it->second;
  if (mine >= per_caller_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this caller runs ", mine,
        " streaming calls on this server already, the most one caller may "
        "(max_streams_per_caller); start this one when one of them ends"));
  }
  if (running_ >= total_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this server runs ", running_,
        " streaming calls already, the most it takes at once (max_streams); "
        "try again shortly, or on another replica"));
  }
  ++running_;
  ++by_caller_[caller];
  return absl::OkStatus();
}

void StreamLimits::Leave(const std::string& caller) {
  absl::MutexLock lock(&mu_);
  auto it = by_caller_.find(caller);
  if (it == by_caller_.end()) return;
  --running_;
  if (--it->second == 0) by_caller_.erase(it);
}

int StreamLimits::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

}  // namespace rapport
