// Client streams for tests of the services' streamed RPCs (imports), which
// read their messages through a `next(Request*)` function.
#ifndef RAPPORT_TESTS_SUPPORT_STREAMS_H_
#define RAPPORT_TESTS_SUPPORT_STREAMS_H_

#include <functional>
#include <utility>

namespace rapport::testing {

// A stream of one message, `request`, then its end.
//
//   imports.ImportDeals(testing::OneMessage(request), "user:ada");
template <typename Request>
std::function<bool(Request*)> OneMessage(Request request) {
  return [request = std::move(request), sent = false](Request* out) mutable {
    if (sent) return false;
    *out = request;
    return sent = true;
  };
}

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_STREAMS_H_
