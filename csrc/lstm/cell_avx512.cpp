// f32_lstm_cell_avx512: the fused LSTM cell, 16 hidden units per vector. Compiled with
// -mavx512f/bw/dq/vl only.
#include "common/simd_avx512.h"
#include "lstm/cell_simd.h"
#include "lstm/lstm.h"

namespace ember::lstm {

const CellKernels f32_lstm_cell_avx512{"f32_lstm_cell_avx512", &cell_forward<Avx512>,
                                       &cell_backward<Avx512>};

}  // namespace ember::lstm
