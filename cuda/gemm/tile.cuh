// Device helpers shared by the tiled GEMM kernels: which output tile a block computes, and how
// many elements of a 4-wide chunk of an operand lie inside the matrix.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda::gemm_detail {

// Tile rows per group of the block order below.
constexpr int64_t kGroupM = 8;

// The output tile (tile_m, tile_n) of linear block index `block` < tiles_m * tiles_n. Blocks run
// down groups of kGroupM tile rows column by column, so the blocks resident at one time share a
// few panels of A and B in L2 instead of sweeping all of B for every row of tiles. The last
// group may have fewer rows; the map is a bijection onto the tiles.
__device__ inline void tile_coords(int64_t block, int64_t tiles_m, int64_t tiles_n, int64_t& tile_m,
                                   int64_t& tile_n) {
  const int64_t per_group = kGroupM * tiles_n;
  const int64_t group = block / per_group;
  const int64_t first_m = group * kGroupM;
  const int64_t rows = tiles_m - first_m < kGroupM ? tiles_m - first_m : kGroupM;
  const int64_t local = block - group * per_group;  // < rows * tiles_n
  tile_m = first_m + local % rows;
  tile_n = local / rows;
}

// How many of the 4 elements from index `start` along a dimension of `extent` exist: 0 to 4.
__device__ inline int valid_of_4(int64_t extent, int64_t start) {
  const int64_t d = extent - start;
  return d <= 0 ? 0 : d >= 4 ? 4 : static_cast<int>(d);
}

}  // namespace ember::cuda::gemm_detail
