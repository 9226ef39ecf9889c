// exp, sigmoid and tanh on SIMD vectors, written once over a vector type V (common/simd_avx2.h,
// common/simd_avx512.h). Relative error under 1e-6 against libm over float32's range (tested in
// tests/test_vmath.py); NaN in gives NaN out, +-inf behave as libm's.
// Anonymous namespace: each ISA file that includes this gets its own private copy.
#pragma once

namespace {

// e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln(2) / 2, e^r from a degree-6 polynomial
// (Cephes' expf coefficients). 2^n is applied in two halves so that results down to the
// subnormal range and up to overflow come out right.
template <class V>
inline typename V::Reg exp_v(typename V::Reg x) {
  using Reg = typename V::Reg;
  const Reg clamped = V::min(V::set1(89.0f), V::max(V::set1(-104.0f), x));
  const Reg n = V::round(V::mul(clamped, V::set1(1.44269504088896341f)));
  Reg r = V::fnma(n, V::set1(0.693359375f), clamped);  // ln 2 split in two for an exact r
  r = V::fnma(n, V::set1(-2.12194440e-4f), r);
  Reg p = V::set1(1.9875691500e-4f);
  p = V::fma(p, r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  p = V::fma(V::mul(p, r), r, V::add(r, V::set1(1.0f)));
  const Reg half = V::round(V::mul(n, V::set1(0.5f)));
  const Reg result = V::ldexp(V::ldexp(p, half), V::sub(n, half));
  return V::keep_nan(x, result);
}

// 1 / (1 + e^-x)
template <class V>
inline typename V::Reg sigmoid_v(typename V::Reg x) {
  const typename V::Reg one = V::set1(1.0f);
  return V::div(one, V::add(one, exp_v<V>(V::sub(V::zero(), x))));
}

// tanh: an odd polynomial below |x| = 0.625 (Cephes' tanhf), else 1 - 2 / (e^2|x| + 1) with the
// sign of x. The polynomial avoids the cancellation of the exponential form near 0.
template <class V>
inline typename V::Reg tanh_v(typename V::Reg x) {
  using Reg = typename V::Reg;
  const Reg ax = V::abs(x);
  const Reg z = V::mul(x, x);
  Reg p = V::set1(-5.70498872745e-3f);
  p = V::fma(p, z, V::set1(2.06390887954e-2f));
  p = V::fma(p, z, V::set1(-5.37397155531e-2f));
  p = V::fma(p, z, V::set1(1.33314422036e-1f));
  p = V::fma(p, z, V::set1(-3.33332819422e-1f));
  const Reg small = V::fma(V::mul(p, z), x, x);
  const Reg one = V::set1(1.0f);
  const Reg e = exp_v<V>(V::add(ax, ax));
  const Reg large = V::copysign(V::sub(one, V::div(V::set1(2.0f), V::add(e, one))), x);
  return V::keep_nan(x, V::select_lt(ax, V::set1(0.625f), small, large));
}

}  // namespace
