// Index helpers shared by the convolution kernels (portable code only).
#pragma once
#include <algorithm>
#include <cstdint>

namespace ember::conv {

// Outputs [lo, hi) of an axis: those o in [0, count) whose input index o*stride + offset lies in
// [0, size); the others read the padding.
struct Range {
  int64_t lo, hi;
};

inline Range valid_outputs(int64_t offset, int64_t stride, int64_t size, int64_t count) {
  // o*stride + offset >= 0    <=>  o >= ceil(-offset / stride)
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // o*stride + offset < size  <=>  o < ceil((size - offset) / stride)
  const int64_t hi = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
  const int64_t lo_c = std::min(lo, count);
  return {lo_c, std::clamp(hi, lo_c, count)};
}

// Output rows [first, last] that the output positions l in [l0, l1) touch (l = p*Q + q), and the
// columns [qa, qb) of row p among them.
struct RowSpan {
  int64_t first, last;
};

inline RowSpan rows_of(int64_t l0, int64_t l1, int64_t q) { return {l0 / q, (l1 - 1) / q}; }

inline void columns_of(int64_t p, int64_t l0, int64_t l1, int64_t q, const RowSpan& rows,
                       int64_t& qa, int64_t& qb) {
  qa = p == rows.first ? l0 - p * q : 0;
  qb = p == rows.last ? l1 - p * q : q;
}

}  // namespace ember::conv
