// The pooling row and plane kernels, written once over a vector type V and instantiated by each
// ISA's file (pool_generic.cpp, pool_avx2.cpp, pool_avx512.cpp). V is a SIMD trait of
// common/simd_*.h (load, store, add, div, set1, zero, reduce_add) extended with the pooling
// operations of pool/vec_*.h:
//   Mask take(v, best)             lanes where v > best or v is NaN (PyTorch's max rule)
//   Reg select(m, a, b)            a where m, else b; IReg iselect(m, a, b) the same on int32
//   IReg iset1(i)                  int32 lanes
//   store_index(p, i, base, step)  p[l] = i[l] + base + l * step, as int64
//   Reg load_even(p), load_odd(p)  lane l = p[2l], p[2l + 1] (reads p[0, 2 * width))
//   add_pairs(p, e, o)             p[2l] += e[l], p[2l + 1] += o[l]
//   Reg zero_below(v, k)           lanes l < k set to 0
//
// Vectors run along the output row: lane l computes output column q0 + l, whose window starts at
// input column (q0 + l) * sw - pw. Stride 1 loads one vector per window tap; stride 2 loads two
// and keeps the even or odd lanes. Other strides, and the columns whose windows cross the
// border, take the scalar loops, which follow PyTorch's CPU loops step by step.
//
// Anonymous namespace and no standard-library templates, on purpose: each ISA file gets its own
// private copy, so the linker cannot merge one ISA's instantiation into another's path.
#pragma once
#include <cstdint>
#include <cstring>

#include "pool/pool.h"

namespace {

using ember::pool::Window;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Output columns [lo, hi) that the vector loops compute: every column a vector tap reads, from
// w0 = q * sw - pw to w0 + reach, lies in [0, W). Stride 2 reads one column past a 1-wide window.
// Empty for strides above 2 and when fewer than `width` columns qualify.
struct Span {
  int64_t lo, hi;
};

inline Span vector_span(const Window& g, int width) {
  if (g.sw > 2) return {0, 0};
  const int64_t last = (g.kw - 1) * g.dw;
  const int64_t reach = g.sw == 1 ? last : max64(last, 1);
  const int64_t lo = (g.pw + g.sw - 1) / g.sw;
  const int64_t room = g.W - 1 - reach + g.pw;  // q * sw <= room
  const int64_t hi = room < 0 ? 0 : min64(room / g.sw + 1, g.Q);
  if (hi - lo < width) return {0, 0};
  return {lo, hi};
}

// Tap at column offset `off` of the windows starting at row[0], row[SW], row[2 SW], ...
// Stride 2 takes the odd lanes of the pair block at off - 1 (the even ones of the block at 0 for
// off = 0), so that no load runs past the last lane's last tap.
template <class V, int SW>
inline typename V::Reg load_tap(const float* row, int64_t off) {
  if (SW == 1) return V::load(row + off);
  return off == 0 ? V::load_even(row) : V::load_odd(row + off - 1);
}

// A compile-time int for the generic lambdas of with_shape.
template <int N>
struct Int {
  static constexpr int value = N;
};

// Calls f(Int<SW>(), Int<KW>()) for the window's column stride SW in {1, 2} (nothing for other
// strides) and KW = kw for undilated 2- and 3-wide windows (taps unrolled), KW = 0 otherwise
// (kw and dw read from g).
template <class F>
inline void with_shape(const Window& g, F f) {
  const int kw = g.dw == 1 && (g.kw == 2 || g.kw == 3) ? static_cast<int>(g.kw) : 0;
  if (g.sw == 1) {
    if (kw == 2) f(Int<1>(), Int<2>());
    if (kw == 3) f(Int<1>(), Int<3>());
    if (kw == 0) f(Int<1>(), Int<0>());
  } else if (g.sw == 2) {
    if (kw == 2) f(Int<2>(), Int<2>());
    if (kw == 3) f(Int<2>(), Int<3>());
    if (kw == 0) f(Int<2>(), Int<0>());
  }
}

// ---- max pooling ------------------------------------------------------------------------------

// The window rows of output row p as PyTorch walks them: h0, h0 + dh, ... below h1, with h0
// moved out of the top padding in steps of dh. Empty (h0 >= h1) only when a dilated window
// skips the whole plane; its output is then -inf at index h0 * W + w0, as PyTorch's.
struct MaxRows {
  int64_t h0, h1;
};

inline MaxRows max_rows(const Window& g, int64_t p) {
  int64_t h0 = p * g.sh - g.ph;
  const int64_t h1 = min64(h0 + (g.kh - 1) * g.dh + 1, g.H);
  if (h0 < 0) h0 += (-h0 + g.dh - 1) / g.dh * g.dh;
  return {h0, h1};
}

// y[q], idx[q] = max and argmax of window (p, q), scalar (borders, strides above 2).
inline void max_one(const Window& g, const float* x, int64_t rs, MaxRows r, int64_t q, float* y,
                    int64_t* idx) {
  int64_t w0 = q * g.sw - g.pw;
  const int64_t w1 = min64(w0 + (g.kw - 1) * g.dw + 1, g.W);
  if (w0 < 0) w0 += (-w0 + g.dw - 1) / g.dw * g.dw;
  float best = -__builtin_inff();
  int64_t arg = r.h0 * g.W + w0;
  for (int64_t h = r.h0; h < r.h1; h += g.dh) {
    const float* row = x + h * rs;
    for (int64_t w = w0; w < w1; w += g.dw) {
      const float v = row[w];
      if (v > best || __builtin_isnan(v)) {
        best = v;
        arg = h * g.W + w;
      }
    }
  }
  y[q] = best;
  idx[q] = arg;
}

// A running maximum and the offset of its tap, per lane.
template <class V>
struct Best {
  typename V::Reg v;
  typename V::IReg i;
};

// best = the later of (best, v at offset i) under PyTorch's rule. The rule (the last NaN, else the
// first maximum) is associative, so taps may be reduced as a tree: row by row, then across rows.
template <class V>
inline void merge(Best<V>& best, typename V::Reg v, typename V::IReg i) {
  const typename V::Mask m = V::take(v, best.v);
  best.v = V::select(m, v, best.v);
  best.i = V::iselect(m, i, best.i);
}

// y[q], idx[q] for q in the span, V::width columns at a time (see with_shape for SW, KW). A
// lane keeps the offset h * W + j * dw of its best tap; store_index adds the lane's first column.
template <class V, int SW, int KW>
void max_vectors(const Window& g, const float* x, int64_t rs, MaxRows r, Span s, float* y,
                 int64_t* idx) {
  const int64_t kw = KW ? KW : g.kw, dw = KW ? 1 : g.dw;
  for (int64_t q = s.lo; q < s.hi; q += V::width) {
    const int64_t q0 = min64(q, s.hi - V::width);  // the last vector overlaps the one before
    const int64_t w0 = q0 * SW - g.pw;
    Best<V> best{V::set1(-__builtin_inff()), V::iset1(static_cast<int32_t>(r.h0 * g.W))};
    for (int64_t h = r.h0; h < r.h1; h += g.dh) {
      // this row's taps, then the row's best into the running best (two short chains)
      const float* row = x + h * rs + w0;
      const auto at = static_cast<int32_t>(h * g.W);
      Best<V> row_best{load_tap<V, SW>(row, 0), V::iset1(at)};
      for (int64_t j = 1, off = dw; j < kw; ++j, off += dw)
        merge(row_best, load_tap<V, SW>(row, off), V::iset1(at + static_cast<int32_t>(off)));
      if (h == r.h0)
        best = row_best;
      else
        merge(best, row_best.v, row_best.i);
    }
    V::store(y + q0, best.v);
    V::store_index(idx + q0, best.i, static_cast<int32_t>(w0), SW);
  }
}

// Output columns the max vector loops compute: vector_span, if the lanes can hold the indices
// (up to (H + dh) * W, an empty window's) as int32.
inline Span max_span(const Window& g, int width) {
  return g.H + g.dh <= INT32_MAX / g.W ? vector_span(g, width) : Span{0, 0};
}

// y, idx (Q) = output row p of max pooling one plane x (row stride rs); s = max_span.
template <class V>
void max_row(const Window& g, const float* x, int64_t rs, int64_t p, Span s, float* y,
             int64_t* idx) {
  const MaxRows r = max_rows(g, p);
  for (int64_t q = 0; q < s.lo; ++q) max_one(g, x, rs, r, q, y, idx);
  with_shape(g, [&](auto sw, auto kw) {
    max_vectors<V, decltype(sw)::value, decltype(kw)::value>(g, x, rs, r, s, y, idx);
  });
  for (int64_t q = s.hi; q < g.Q; ++q) max_one(g, x, rs, r, q, y, idx);
}

// ---- average pooling --------------------------------------------------------------------------

// The window of output p along one axis as PyTorch clips it: [lo, hi) inside the plane, and
// `pad` positions counted with padding (clipped at the far padded border in ceil mode).
struct AvgRange {
  int64_t lo, hi, pad;
};

inline AvgRange avg_range(int64_t p, int64_t stride, int64_t pad, int64_t k, int64_t size) {
  const int64_t start = p * stride - pad;
  const int64_t end = min64(start + k, size + pad);
  return {max64(start, 0), min64(end, size), end - start};
}

inline float avg_divisor(const Window& g, int64_t with_pad, int64_t inside) {
  return static_cast<float>(g.divisor != 0 ? g.divisor : g.count_include_pad ? with_pad : inside);
}

// y[q] = average of window (rows r, column q), scalar (borders, strides above 2).
inline void avg_one(const Window& g, const float* x, int64_t rs, AvgRange r, int64_t q, float* y) {
  const AvgRange c = avg_range(q, g.sw, g.pw, g.kw, g.W);
  if (c.lo >= c.hi) {
    y[q] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int64_t h = r.lo; h < r.hi; ++h)
    for (int64_t w = c.lo; w < c.hi; ++w) sum += x[h * rs + w];
  y[q] = sum / avg_divisor(g, r.pad * c.pad, (r.hi - r.lo) * (c.hi - c.lo));
}

// y[q] for q in the span: there every window has its kw columns inside the plane, so one
// divisor serves the whole row. Sums in PyTorch's order (row by row, left to right).
template <class V, int SW, int KW>
void avg_vectors(const Window& g, const float* x, int64_t rs, AvgRange r, Span s, float* y) {
  using Reg = typename V::Reg;
  const int64_t kw = KW ? KW : g.kw;
  const Reg div = V::set1(avg_divisor(g, r.pad * kw, (r.hi - r.lo) * kw));
  for (int64_t q = s.lo; q < s.hi; q += V::width) {
    const int64_t q0 = min64(q, s.hi - V::width);  // the last vector overlaps the one before
    const float* base = x + q0 * SW - g.pw;
    Reg sum = V::zero();
    for (int64_t h = r.lo; h < r.hi; ++h)
      for (int64_t j = 0; j < kw; ++j) sum = V::add(sum, load_tap<V, SW>(base + h * rs, j));
    V::store(y + q0, V::div(sum, div));
  }
}

// y (Q) = output row p of average pooling one plane x (row stride rs); s = vector_span.
template <class V>
void avg_row(const Window& g, const float* x, int64_t rs, int64_t p, Span s, float* y) {
  const AvgRange r = avg_range(p, g.sh, g.ph, g.kh, g.H);
  if (r.lo >= r.hi) {
    for (int64_t q = 0; q < g.Q; ++q) y[q] = 0.0f;
    return;
  }
  for (int64_t q = 0; q < s.lo; ++q) avg_one(g, x, rs, r, q, y);
  with_shape(g, [&](auto sw, auto kw) {
    avg_vectors<V, decltype(sw)::value, decltype(kw)::value>(g, x, rs, r, s, y);
  });
  for (int64_t q = s.hi; q < g.Q; ++q) avg_one(g, x, rs, r, q, y);
}

// dx (rows r, window of column q) += dy / divisor, scalar.
inline void avg_one_backward(const Window& g, float dy, AvgRange r, int64_t q, float* dx) {
  const AvgRange c = avg_range(q, g.sw, g.pw, g.kw, g.W);
  if (c.lo >= c.hi) return;
  const float grad = dy / avg_divisor(g, r.pad * c.pad, (r.hi - r.lo) * (c.hi - c.lo));
  for (int64_t h = r.lo; h < r.hi; ++h)
    for (int64_t w = c.lo; w < c.hi; ++w) dx[h * g.W + w] += grad;
}

// The same for q in the span, V::width columns at a time; dy is output row p.
template <class V, int SW, int KW>
void avg_vectors_backward(const Window& g, const float* dy, AvgRange r, Span s, float* dx) {
  using Reg = typename V::Reg;
  const int64_t kw = KW ? KW : g.kw;
  const Reg div = V::set1(avg_divisor(g, r.pad * kw, (r.hi - r.lo) * kw));
  for (int64_t q = s.lo; q < s.hi; q += V::width) {
    const int64_t q0 = min64(q, s.hi - V::width);
    Reg grad = V::div(V::load(dy + q0), div);
    // the last vector overlaps the one before: its lanes already added add zero
    if (q0 < q) grad = V::zero_below(grad, static_cast<int>(q - q0));
    for (int64_t h = r.lo; h < r.hi; ++h) {
      float* row = dx + h * g.W + q0 * SW - g.pw;
      if (SW == 1) {
        for (int64_t j = 0; j < kw; ++j) V::store(row + j, V::add(V::load(row + j), grad));
      } else {
        // taps 0 and 1 share the pair block at 0; tap j > 1 is the odd lanes of the block at j - 1
        V::add_pairs(row, grad, kw > 1 ? grad : V::zero());
        for (int64_t j = 2; j < kw; ++j) V::add_pairs(row + j - 1, V::zero(), grad);
      }
    }
  }
}

// dx (H * W) = gradient of average pooling one plane, from dy (P rows, row stride dy_rs);
// s = vector_span.
template <class V>
void avg_backward_plane(const Window& g, const float* dy, int64_t dy_rs, Span s, float* dx) {
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.H * g.W));
  for (int64_t p = 0; p < g.P; ++p) {
    const AvgRange r = avg_range(p, g.sh, g.ph, g.kh, g.H);
    if (r.lo >= r.hi) continue;
    const float* d = dy + p * dy_rs;
    for (int64_t q = 0; q < s.lo; ++q) avg_one_backward(g, d[q], r, q, dx);
    with_shape(g, [&](auto sw, auto kw) {
      avg_vectors_backward<V, decltype(sw)::value, decltype(kw)::value>(g, d, r, s, dx);
    });
    for (int64_t q = s.hi; q < g.Q; ++q) avg_one_backward(g, d[q], r, q, dx);
  }
}

// ---- adaptive average pooling -----------------------------------------------------------------

// Output i of n over an input of `size`: [floor(i * size / n), ceil((i + 1) * size / n)),
// computed as PyTorch does, without overflow.
inline int64_t adaptive_start(int64_t i, int64_t n, int64_t size) {
  return (i / n) * size + ((i % n) * size) / n;
}
inline int64_t adaptive_end(int64_t i, int64_t n, int64_t size) {
  return 1 + ((i + 1) * size - 1) / n;
}

// Sum of p[0, n): four vector accumulators (independent add chains), then the scalar tail.
template <class V>
float segment_sum(const float* p, int64_t n) {
  using Reg = typename V::Reg;
  constexpr int64_t kStep = 4 * V::width;
  Reg a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  int64_t j = 0;
  for (; j + kStep <= n; j += kStep) {
    a0 = V::add(a0, V::load(p + j));
    a1 = V::add(a1, V::load(p + j + V::width));
    a2 = V::add(a2, V::load(p + j + 2 * V::width));
    a3 = V::add(a3, V::load(p + j + 3 * V::width));
  }
  for (; j + V::width <= n; j += V::width) a0 = V::add(a0, V::load(p + j));
  float tail = 0.0f;
  for (; j < n; ++j) tail += p[j];
  return V::reduce_add(V::add(V::add(a0, a1), V::add(a2, a3))) + tail;
}

// y (Q) = output row p of adaptive average pooling one plane x (row stride rs). Windows that
// span whole rows of a plane with contiguous rows (global pooling) are summed as one segment.
template <class V>
void adaptive_avg_row(const Window& g, const float* x, int64_t rs, int64_t p, float* y) {
  const int64_t h0 = adaptive_start(p, g.P, g.H), h1 = adaptive_end(p, g.P, g.H);
  for (int64_t q = 0; q < g.Q; ++q) {
    const int64_t w0 = adaptive_start(q, g.Q, g.W), n = adaptive_end(q, g.Q, g.W) - w0;
    float sum = 0.0f;
    if (n == g.W && rs == g.W) {
      sum = segment_sum<V>(x + h0 * rs, (h1 - h0) * n);
    } else {
      for (int64_t h = h0; h < h1; ++h) sum += segment_sum<V>(x + h * rs + w0, n);
    }
    y[q] = sum / static_cast<float>((h1 - h0) * n);
  }
}

// dx (H * W) = gradient of adaptive average pooling one plane, from dy (P rows, stride dy_rs).
template <class V>
void adaptive_avg_backward_plane(const Window& g, const float* dy, int64_t dy_rs, float* dx) {
  using Reg = typename V::Reg;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.H * g.W));
  for (int64_t p = 0; p < g.P; ++p) {
    const int64_t h0 = adaptive_start(p, g.P, g.H), h1 = adaptive_end(p, g.P, g.H);
    for (int64_t q = 0; q < g.Q; ++q) {
      const int64_t w0 = adaptive_start(q, g.Q, g.W), n = adaptive_end(q, g.Q, g.W) - w0;
      const float grad = dy[p * dy_rs + q] / static_cast<float>((h1 - h0) * n);
      const Reg gv = V::set1(grad);
      for (int64_t h = h0; h < h1; ++h) {
        float* row = dx + h * g.W + w0;
        int64_t j = 0;
        for (; j + V::width <= n; j += V::width) V::store(row + j, V::add(V::load(row + j), gv));
        for (; j < n; ++j) row[j] += grad;
      }
    }
  }
}

// ---- entry points: blocks of output rows or of planes ----------------------------------------

using ember::pool::ConstPlanes;

// Calls row(x plane, p, r) for the output rows r in [r0, r1) of the (N * C * P, Q) output:
// row r is row p = r % P of plane r / P.
template <class F>
inline void for_rows(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, F row) {
  int64_t plane = r0 / g.P, p = r0 % g.P;
  for (int64_t r = r0; r < r1; ++plane, p = 0) {
    const float* xp = x.data + (plane / x.C) * x.sn + (plane % x.C) * x.sc;
    for (; p < g.P && r < r1; ++p, ++r) row(xp, p, r);
  }
}

// Calls plane(dy plane, i) for the planes i in [i0, i1).
template <class F>
inline void for_planes(const ConstPlanes& dy, int64_t i0, int64_t i1, F plane) {
  for (int64_t i = i0; i < i1; ++i) plane(dy.data + (i / dy.C) * dy.sn + (i % dy.C) * dy.sc, i);
}

// y, idx (N * C * P, Q) rows [r0, r1) of max pooling.
template <class V>
void max_pool_rows(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y,
                   int64_t* idx) {
  const Span s = max_span(g, V::width);
  for_rows(g, x, r0, r1, [&](const float* xp, int64_t p, int64_t r) {
    max_row<V>(g, xp, x.rs, p, s, y + r * g.Q, idx + r * g.Q);
  });
}

// y (N * C * P, Q) rows [r0, r1) of average pooling.
template <class V>
void avg_pool_rows(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y) {
  const Span s = vector_span(g, V::width);
  for_rows(g, x, r0, r1, [&](const float* xp, int64_t p, int64_t r) {
    avg_row<V>(g, xp, x.rs, p, s, y + r * g.Q);
  });
}

// dx (N * C, H * W) planes [i0, i1) of the average pooling gradient.
template <class V>
void avg_pool_backward_planes(const Window& g, const ConstPlanes& dy, int64_t i0, int64_t i1,
                              float* dx) {
  const Span s = vector_span(g, V::width);
  for_planes(dy, i0, i1, [&](const float* d, int64_t i) {
    avg_backward_plane<V>(g, d, dy.rs, s, dx + i * g.H * g.W);
  });
}

// y (N * C * P, Q) rows [r0, r1) of adaptive average pooling.
template <class V>
void adaptive_avg_pool_rows(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1,
                            float* y) {
  for_rows(g, x, r0, r1, [&](const float* xp, int64_t p, int64_t r) {
    adaptive_avg_row<V>(g, xp, x.rs, p, y + r * g.Q);
  });
}

// dx (N * C, H * W) planes [i0, i1) of the adaptive average pooling gradient.
template <class V>
void adaptive_avg_pool_backward_planes(const Window& g, const ConstPlanes& dy, int64_t i0,
                                       int64_t i1, float* dx) {
  for_planes(dy, i0, i1, [&](const float* d, int64_t i) {
    adaptive_avg_backward_plane<V>(g, d, dy.rs, dx + i * g.H * g.W);
  });
}

}  // namespace
