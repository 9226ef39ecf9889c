// f32_lstm_cell_avx2: the fused LSTM cell, 8 hidden units per vector. Compiled with -mavx2 -mfma
// only.
#include "common/simd_avx2.h"
#include "lstm/cell_simd.h"
#include "lstm/lstm.h"

namespace ember::lstm {

const CellKernels f32_lstm_cell_avx2{"f32_lstm_cell_avx2", &cell_forward<Avx2>,
                                     &cell_backward<Avx2>};

}  // namespace ember::lstm
