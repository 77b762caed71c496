// Calls that race: AtOnce(n, call) runs call(0) .. call(n - 1) on n threads
// released together and gives their answers in that order.
//
//   std::vector<absl::StatusOr<Partner>> got =
//       AtOnce(4, [&](size_t) { return logic.IdentifyPartner(r, "u"); });
#ifndef RAPPORT_TESTS_SUPPORT_AT_ONCE_H_
#define RAPPORT_TESTS_SUPPORT_AT_ONCE_H_

#include <cstddef>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/synchronization/notification.h"

namespace rapport::testing {

template <typename Call>
auto AtOnce(size_t n, Call call)
    -> std::vector<std::invoke_result_t<Call, size_t>> {
  std::vector<std::invoke_result_t<Call, size_t>> answers(n);
  absl::Notification go;
  std::vector<std::thread> callers;
  for (size_t i = 0; i < n; ++i) {
    callers.emplace_back([&, i] {
      go.WaitForNotification();
      answers[i] = call(i);
    });
  }
  go.Notify();
  for (std::thread& t : callers) t.join();
  return answers;
}

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_AT_ONCE_H_
