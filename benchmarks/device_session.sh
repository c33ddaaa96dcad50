#!/usr/bin/env bash
# Checks and timings for one lease of the GPU machine, in priority order, each step time-bounded.
# Usage (from the repo root, on the device):  bash benchmarks/device_session.sh A|B|C
#   A: correctness — lkconv verify (all algorithms), the op tests on the GPU, host-overhead profile (~8 min)
#   B: lkconv bench fp32 and bf16, NCHW (~8 min)
#   C: lkconv bench channels_last, implicit-GEMM tile sweep, the 1D ops, SKA/DCLS, host profile (~9 min)
#   D: re-verify after kernel changes, GPU op tests, short_conv1d and an NCHW subset re-measured (~9 min)
#   E: every lkconv.nn block on CUDA vs float64 CPU, channels_last bench (fp32, bf16), direct-kernel sweep of
#      bf16 and channels_last tiles on the compute-bound shapes (~9 min)
#   F: lkconv verify and every lkconv.nn block on CUDA (after kernel or heuristic changes) (~8 min)
#   G: lkconv bench fp32 channels_last and bf16 NCHW, all public shapes (~9 min)
#   H: lkconv bench bf16 channels_last, all public shapes; host and per-kernel profiles of small layers (~9 min)
#   I: after an FFT change: verify of fft and auto, the FFT op tests, channels_last bench of the FFT-bound shapes (~7 min)
#   P: long_conv1d's fused kernels (op tests, verify, sweep, bench) and the tests of the transposed implicit GEMM
#      and of the changes since session O (~9 min)
#   Q: lkconv verify --quick; transposed implicit GEMM on slak_t.s1.long (sweep, bench); session O's
#      GPU-only timings (~9 min)
#   R: after P: the fused long_conv1d sweep widened (pipelining stages, fp16 precisions, sgconv_16k's 32768-point
#      transforms) and the bench of the 1D ops through CUDA-graph replay (~9 min)
#   S: after a fused long_conv1d change: its GPU op tests, then the tile/pair/precision sweep on hyena_4k (~8 min)
#   T: after S: fused long_conv1d tests at every size, then bf16 / bf16x3 operand sweeps on hyena_4k, hyena_1k and
#      sgconv_16k (~9 min)
#   U: after T: fused long_conv1d tests with the new defaults, warps/stages and 16384-point sweeps, verify of
#      conv1d, lkconv bench --op long_conv1d (~8 min)
#   V: after U: lkconv bench --op long_conv1d, verify of conv1d and the GPU op tests of the 1D convolutions with
#      fused transforms up to 16384 points; bf16 bench of slak_t.s1.long (~9 min)
#   W: after V: lkconv bench --op long_conv1d in bf16 (kernel spectrum without copies), verify of conv1d (~8 min)
#   X: after W: the fused long_conv1d check against float64 (natural-order spectrum, shared plan), slak_t.s1.long
#      bf16 forward+backward, the engine-thread host cost of a backward (~7 min)
#   Y: lkconv verify --quick, 2D and 1D suites with parallel compiles (~8 min)
#   Z: host-time profiles of small layers' steps (engine thread vs calling thread, cProfile) (~3 min)
#   AA: after "auto" kept a GPU-time choice for CUDA graphs: its GPU tests, then bench --graph and eager on the
#      small, host-bound layers (~6 min)
#   AB: channels_last fp32 direct-kernel sweep (--wide) on slak_t.s1.long, replknet_31b.s1/s2 (~8 min)
#   AC: after longer strips for tall kernels: slak_t.s1.long strip-length sweep (NCHW, channels_last) and bench (~6 min)
#   AD: lkconv verify --quick after AC; bench --graph fp32 NCHW on every public shape (~8 min)
#   AE: after the FFT frames shrank to H + max(pad): FFT op tests and verify, bench of the FFT-bound shapes in fp32
#      NCHW and channels_last (~9 min)
#   AF: after the FFT's joint backward and one-pass frames: where the FFT's time goes, verify of fft, bench of the
#      RepLKNet-31B stages in fp32 NCHW and channels_last (~9 min)
#   AG: after AF: the FFT's pieces and kernels (profile) on replknet_31b.s1 and s3 (~3 min)
#   AH: after the FFT's Triton passes (frame, crop, lag spectrum) and unscaled inverses: FFT op tests, pieces,
#      verify of fft, bench of replknet_31b.s1/s2 in fp32 NCHW and channels_last (~8 min)
#   AI: after AH: bench fp32 NCHW of every shape with K >= 13, fp32 channels_last of slak_t.s1.long and
#      replknet_31b.s1/s2 (~9 min)
#   AJ: lkconv verify --quick after the FFT rework; bench of slak_t.s1.long (fp32 NCHW, channels_last) and
#      slak_t.s1.wide (fp32 NCHW) (~9 min)
#   AK: FFT frame-size sweep (round trip per candidate size) on the K >= 13 shapes (~3 min)
#   AL: after the measured joint-FFT backward: FFT op tests, fp32 NCHW bench of replknet_31b.s2 and slak_t.s1.wide,
#      bf16 NCHW bench of replknet_31b.s1/s2/s3 (~8 min)
#   AM: after the review of the FFT rework (tap indices computed on the device, 64-bit row offsets, strided bias):
#      FFT op tests, verify of fft and auto, pieces of replknet_31b.s1 (~5 min)
#   AN: after the lag-spectrum kernel split the batch into groups: FFT op tests, pieces of replknet_31b.s1, verify
#      of fft (~4 min)
#   AO: after the joint-backward custom op for torch.compile: the FFT and op tests on the GPU (~2 min)
#   AP: after the batch-summed weight-gradient kernel (direct_wgrad.py): the FFT and op tests on the GPU (AO's),
#      the weight-gradient sweep of both direct kernels on the public shapes (~9 min)
#   AQ: after AP: the weight-gradient tests on the GPU, the sweep of both weight-gradient kernels with all weight
#      lines per program by default (~8 min)
#   AR: after AQ: the weight-gradient tests on the GPU; both weight-gradient kernels and a two-output planes tile
#      on every public shape (fp32 NCHW) and three channels_last ones (~8 min)
#   AS: after the weight-gradient kernel choice and tiles were set from AR: verify of direct, fp32 NCHW bench of the
#      K >= 13 shapes it serves (~9 min)
#   AT: after AS: lkconv verify --quick of every depthwise algorithm (the new weight-gradient kernel under direct
#      and auto), unireplknet_t.s3 fp32 NCHW eager and in CUDA graphs (~9 min)
#   AU: NCHW forward and input-gradient tiles of two and four outputs per thread on the K >= 13 shapes (~4 min)
#   AV: after the weight-gradient kernel: fp32 channels_last and bf16 NCHW bench of the shapes whose fp32 NCHW
#      step it sped up (~6 min)
#   AW: channels_last and bf16 weight-gradient tiles of the batch-summed kernel on replknet_31b.s3 and
#      unireplknet_t.s1 (~4 min)
#   AX: after AW's channels_last tiles: fp32 NCHW and channels_last bench of replknet_31b.s3 and unireplknet_t.s1 (~3 min)
#   AY: bf16 direct forward / input gradient with and without the zero-bordered input copy on the K >= 13 shapes
#      (~3 min)
#   AZ: after AY (no zero-bordered copy where the border exceeds twice the plane): fp32 and bf16 NCHW bench of
#      replknet_31b.s3, s2 and unireplknet_t.s1 with a fresh autotune cache (~5 min)
#   CA: after the one-launch partial sum of the weight gradient and the measured strips per program: the weight-
#      gradient and dispatch tests on the GPU, lkconv verify --quick --ops depthwise2d (~7 min)
#   CB: host time of a small layer's step at this commit and at prev_tree (an earlier commit's lkconv and
#      benchmarks, carried), twice each; lkconv bench fp32 NCHW, fresh autotune cache (~9 min)
#   CC: after the bench timed lkconv and PyTorch in turns and the lighter hand-off to PyTorch: fp32 and bf16, NCHW
#      and channels_last bench of the small layers, fresh autotune cache (~9 min)
#   CE: after the review fixes of the tenth session (64-bit partial-sum indices, the strips-per-program cache entry
#      read back): their GPU tests, then the fp32 NCHW bench of four small layers twice on one autotune cache, the
#      second run reading the strips per program from disk (~8 min)
#   BA: lkconv verify --quick --ops depthwise2d at the session's last kernel change (~3 min)
#   BB: channels_last forward / input-gradient tile sweep of unireplknet_t.s1 (slower than its NCHW after the
#      sixth session) and the bf16 NCHW direct forward of replknet_31b.s3 (~4 min)
#   BC: after the border-skipping kernels (one strip spans the plane) and fp32 weights for 16-bit inputs: the direct
#      op tests on the GPU, default against border-computing tiles on the single-strip shapes, then the fp32/bf16 x
#      NCHW/channels_last bench of them and unireplknet_t.s1 with a fresh autotune cache (~9 min)
#   BD: after BC: where a forward+backward step's time goes (kernels and host) for replknet_31b.s3 in every dtype and
#      layout and unireplknet_t.s1 in bf16 NCHW / fp32 channels_last; channels_last tiles of unireplknet_t.s1 (~8 min)
#   BE: host microseconds of a forward+backward step of replknet_31b.s3 (batch 4: the host's work alone) in every
#      dtype and layout, with a cProfile of the bf16 channels_last one (~4 min)
#   BF: after the host-side trims (weight copies in one call, launch keys) and 16-channel channels_last tiles: BE's
#      host measurements again, then the fp32/bf16 x NCHW/channels_last bench of replknet_31b.s2/s3 and
#      unireplknet_t.s1 with a fresh autotune cache (~7 min)
#   BG: after two-strip launches compile each strip with its position: default against border-computing tiles on
#      replknet_31b.s1, slak_t.s1.long and unireplknet_t.s1 (forward, input gradient), then lkconv verify --quick
#      --ops depthwise2d (~9 min)
#   BH: fp32 NCHW bench of every public shape with a fresh autotune cache; forward+backward of replknet_31b.s2/s3
#      and unireplknet_t.s1 in fp32/bf16 x NCHW/channels_last through CUDA graphs (GPU time only) (~9 min)
#   BI: after BH stopped at its limits: the fp32 NCHW bench of the public shapes it did not reach, and
#      replknet_31b.s3 in fp32/bf16 x NCHW/channels_last through CUDA graphs (~8 min)
#   BJ: host microseconds of small layers' forward+backward steps at this commit and at an earlier tree extracted
#      into ./prev_tree (git archive <commit> lkconv benchmarks), on the same machine, twice each (~4 min)
#   BK: after two-strip forward launches became one launch per strip (compile time): BG's border sweep again, then
#      lkconv verify --quick --ops depthwise2d (~8 min)
#   BL: after small two-strip bodies went back into one launch (large ones keep one launch per strip) and the strip
#      weight gradient's per-strip launches: the direct op tests of those forms on the GPU, then slak_t.s1.long's
#      weight gradient against the border tile (~9 min; a first run, whose logs were replaced, also timed
#      unireplknet_t.s1 and slak_t.s1.long forward and input gradient and stopped the tests at 200 s compiling)
#   BM: after BL: fp32 NCHW bench of slak_t.s1.long/wide, unireplknet_t.s1 and replknet_31b.s1 (fresh autotune
#      cache), then lkconv verify --quick --ops depthwise2d (~9 min)
#   BN: lkconv bench bf16 NCHW, every public shape, fresh autotune cache (~9 min)
#   BO: lkconv bench fp32 channels_last, every public shape, fresh autotune cache (~9 min)
#   BQ: after the implicit GEMM could keep its zero-bordered buffers (opt-in): its op tests on the GPU, then the
#      default tile's bf16 forward on replknet_31b.s2/s1 without and with kept buffers
#      (LKCONV_IGEMM_WORKSPACE_MB=0 / 512) (~6 min)
#   BR: strips per program of direct.py's strip weight gradient on every shape it serves, fp32/bf16 x NCHW and
#      fp32 channels_last (tune_direct.py --chunks) (~9 min)
#   BS: after "auto" also times the FFT's joint backward against pairs of other choices that the FFT came close
#      to: replknet_31b.s1 channels_last bench, fp32 and bf16, fresh autotune cache (~7 min)
#   BT: channels_last tile sweep of the direct kernels where channels_last ran slower than NCHW on the GPU
#      (cfsr.convmod, puyun.lka_latlon, convnext_t.s1; every direction, fp32) (~8 min)
#   BU: after the channels_last tiles of small kernels changed (4 warps for 8x32 forward tiles, 16 channels where
#      32 leave lanes idle; 4x32 weight-gradient tiles): new default against the old tiles on every small-kernel
#      shape, then lkconv bench fp32 channels_last of those shapes (fresh autotune cache) (~9 min)
#   BV: lkconv verify --quick --ops depthwise2d; bf16 channels_last bench of the small-kernel shapes (~9 min)
#   BW: where cfsr.convmod's channels_last step goes (profile_step.py, direct and auto) (~3 min)
#   BX: after the second change of the small kernels' channels_last tiles (8 warps at stride 2; 4x32 weight-gradient
#      tiles in one pass or on rows at least 128 wide): BU's sweep again, then lkconv verify --quick --ops
#      depthwise2d (~9 min)
#   BY: lkconv bench fp32 channels_last, every public shape, fresh autotune cache, after BX (~9 min)
#   BZ: GPU time of the small-kernel layers through CUDA graphs, fp32 NCHW against channels_last (lkconv bench
#      --graph), where their eager steps are host-bound (~6 min)
#   O: GPU-only timings (lkconv bench --graph, fp32 and bf16 NCHW; short_conv1d); checks of the changes tested
#      on CPU only (verify of conv1d, the CLI and conv1d op tests) (~9 min)
#   N: verify and op tests of implicit_gemm, short_conv1d bench again (~6 min)
#   M: short_conv1d bench (grouped kernels), implicit-GEMM verify and sweep after the column-block change (~7 min)
#   L: lkconv verify --quick (all algorithms) and the implicit-GEMM sweep after its rework; bf16 bench of the
#      31x31 shapes (~9 min)
#   K: implicit-GEMM variants (verify, op tests, tile/variant sweep), short_conv1d sweep, bf16 bench of the
#      31x31/51x5/13x13 shapes (~9 min)
#   J: after an implicit-GEMM change: verify of implicit_gemm and auto, its op tests, the tile sweep with gradients (~9 min)
#   CF: after the strip weight gradient gave each pass of kernel columns its own program: the weight-gradient tests
#      on the GPU, the pass-split / columns-per-pass / strips-per-program sweep (~9 min)
#   CG: after CF: fp32 NCHW and channels_last bench, eager and through CUDA graphs, of the shapes the strip weight
#      gradient serves (~9 min)
#   CH: after the vector forms of NCHW rows (DirectConfig.vec, PlanesConfig.vec): their GPU tests, then the sweep of
#      vec 2 / 4 against the defaults on six NCHW shapes, every direction, fp32 and bf16 (~10 min)
#   CI: the channels_last rows of CF's pass-split sweep that CF2 did not reach (~7 min)
#   CJ: side streams: their GPU tests, verify of the direct algorithm, eager steps with them off and on (~10 min)
#   CK: lkconv bench of slak_t.s1.long and slak_t.s1.wide under "auto" (~9 min)
#   CL: after the implicit-GEMM rework and float32-only side streams: streams, launch and implicit-GEMM GPU tests
#      (300 s limit: a cold machine compiles for minutes), bf16 NCHW bench of the K >= 13 shapes (~10 min)
#   DA: whole-row implicit-GEMM tiles (column_plan): the implicit-GEMM GPU tests, this version against the band tiles
#      of the previous implicit_gemm.py (BASELINE, default out/igemm_base.py) in every direction, bf16 NCHW bench of
#      the shapes whose rows they serve (~9 min)
#   DB: after DA: whole-row tiles from aligned row copies by default (DA read unaligned rows in place, slower on
#      replknet_31b.s2): DA's steps with the in-place form, 32/128-row tiles, 2 warps and Toeplitz tables in the
#      sweep; verify of implicit_gemm and auto (~10 min)
#   DC: after DB: whole-row tiles' rows and warps from DB's sweep: bf16 bench, GPU tests, verify (~9 min)
#   DD: after DC: whole rows against the band on slak_t.s1.long/wide and unireplknet_t.s1 (bf16 sweep, bench) (~9 min)
#   DE: kernel rows per product on whole-row tiles (GPU tests, forward sweep); whole rows against the band on slak (~9 min)
#   DF: after DE: GPU tests; A/B against 98095d3 (carry out/igemm_base.py) of two kernel rows per product and of
#       transposed problems stored in place; weight gradient with 1/2/4 kernel rows per program; bf16 bench (~9 min)
#   DG: after DF: GPU tests, whole-row warps/stages on slak, bf16 bench (~7 min)
#   DH: whole rows of 16-byte aligned rows read in place against the row copy, slak_t.s1.wide bf16, every direction (~2 min)
#   DI: after DH: GPU tests, host time of directly launched implicit-GEMM calls, bf16 bench, verify (~10 min)
#   DJ: fp32 whole rows on slak (sweep, bench under auto); image-order whole rows on 14-column rows (~10 min)
#   DK: block-Toeplitz row blocks against one output row per tile (GPU tests, bf16 sweep with gradients) (~5 min)
#   DQ: after DP: prefetched Toeplitz tiles, 64-input plane steps, several input rows per row-block product (GPU
#       tests, bf16 sweeps through CUDA graphs) (~7 min)
#   DR: after DQ: GPU tests of the new defaults, the shifted canvases on unireplknet_t.s3, canvases
#       placed by each plane program (local_canvas) against the canvas launch, Nsight Compute counters of the 13x13
#       forwards, band row blocks reading a Toeplitz table, whole-row row blocks with prefetch on replknet_31b.s3/s2,
#       bench --graph of the 13x13 forwards, verify, bf16 bench (~9 min)
#   EA: the staged long_conv1d kernels (transforms past MAX_N): GPU tests, config sweep on sgconv_16k and dna_256k
#       (bf16, fp32), lkconv bench --op long_conv1d of both (~9 min)
#   EB: after EA: staged kernels' GPU tests with rows side by side and a bfloat16 workspace, the fused tests after
#       the shared spectrum read, per-kernel profile of staged configs on sgconv_16k and dna_256k, bench (~9 min)
#   EC: after EB: staged GPU tests (half-empty pairs' two-product paths, "auto" in float32 past MAX_N), bench bf16
#       and fp32 of the 1D shapes ("staged_fft" among the candidates), profile of dna_256k's column kernels (~10 min)
#   ED: after EC: 128 columns per program by default where M >= 256 (dna_256k): staged GPU tests, profile and bench
#       of dna_256k, output-row tiles beside it; the staged joint backward, factored twiddles and several sequence
#       pairs per row program (opt-in) (~8 min)
#   EE: ED's tests and staged sweeps with 1024-point rows beside the default, the 7-smooth staged sizes, bench of
#       long_conv1d in bf16 (~6 min)
#   EG: EE cut to a short lease (~5 min)
#   EF: the fused kernels' embedded products and joint backward on hyena_4k (DX's decisive sweep); Nsight Compute
#       on the staged row kernel (hyena_6000) (~7 min)
#   EI: EH cut to a short lease (~6.5 min)
#   EH: the staged kernels' own kernel spectrum (spectrum="rows"), channel pairs (pairing="channels", batch 1) and
#       four-step column transforms (columns="fourstep", M >= 256): GPU tests, profile of dna_256k with all three,
#       of sgconv_16k, hyena_6000 and hyena_4k with the spectrum (~8 min)
#   DX: the fused long_conv1d: embedded complex products against Karatsuba's, with and without the joint backward:
#      GPU tests, bf16 sweep on hyena_4k, bench --op long_conv1d in bf16 (~8 min)
#   DY: after DX: embedded products' block rows (hyena_4k), pairs on hyena_1k, fp32 sweep on hyena_4k (~7 min)
#   DZ: Nsight Compute counters of the fused long_conv1d forward on hyena_4k, both products at one and two pairs (~5 min)
#   DW: DV cut to its deciding checks (~4 min)
#   DV: after DU: the transposed product's GPU tests (bf16), the product against the defaults on the K >= 27 shapes
#      and unireplknet_t.s1, alternating; lkconv verify of implicit_gemm and auto (~7 min)
#   DU: after DT: the transposed product with plain gathers (the plane canvas on unireplknet_t.s3, band row blocks on
#      unireplknet_t.s1 and replknet_31b.s1), its GPU tests; lkconv verify --quick of implicit_gemm and auto after the
#      pair forms' removal (~6 min)
#   DT (commit f90bd16, its case since removed with the forms it timed): the pair canvas and tap-pair tables, with
#      and without the transposed product, on unireplknet_t.s3/s1 and replknet_31b.s1/s2
#   DP: band row blocks on unireplknet_t.s1 and the plane canvas on unireplknet_t.s3 (GPU tests, bf16 sweeps timed
#       through CUDA graphs, lkconv bench --graph of both) (~9 min)
# Outputs (logs, JSON, PNG) go to $OUT (the device tool brings them back) or ./out; C and D pack them into one archive.
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LKCONV_CACHE_DIR=${LKCONV_CACHE_DIR:-/tmp/lkconv-cache}
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name ($*)"
    # its own process group, killed whole afterwards: worker processes of a step stopped at its limit would
    # otherwise keep compiling on every core (and launching) through the next steps' timings
    setsid timeout "$limit" "$@" > "$OUT/$name.log" 2>&1 &
    local pid=$!
    local start=$SECONDS
    wait "$pid"
    echo "$name rc=$? $((SECONDS - start)) s"
    kill -9 -- "-$pid" 2>/dev/null
    tail -n 4 "$OUT/$name.log"
}
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
case "${1:-A}" in
A)
    step verify 220 python -m lkconv verify --quick --jobs 15
    step pytest_ops 200 python -m pytest -q -n 8 tests/ops
    step overhead 80 python benchmarks/overhead.py --shapes convnext_t.s1,unireplknet_t.s3,inceptionnext_t.band
    ;;
B)
    step bench_fp32_nchw 240 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw --out "$OUT/fp32_nchw"
    step bench_bf16_nchw 240 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --out "$OUT/bf16_nchw"
    ;;
C)
    step nn_gpu_machine 90 python -m pytest -q -n 8 -p no:benchmark tests/nn/test_timm_reparam.py tests/nn/test_lsnet.py tests/nn/test_replknet.py tests/nn/test_slak.py tests/nn/test_unireplknet.py
    step ska_dcls 100 python benchmarks/ska_dcls_device.py --json "$OUT/ska_dcls.json"
    step tune_igemm 150 python benchmarks/tune_igemm.py --shapes replknet_31b.s1,unireplknet_t.s1 --json "$OUT/tune_igemm.json"
    step bench_long1d 60 python -m lkconv bench --op long_conv1d --out "$OUT/long1d"
    step bench_short1d 60 python -m lkconv bench --op short_conv1d --out "$OUT/short1d"
    step bench_nhwc 150 python -m lkconv bench --jobs 15 --dtypes fp32,bf16 --layouts nhwc --quick --out "$OUT/nhwc"
    step host_profile 40 python benchmarks/host_profile.py --shape unireplknet_t.s3
    ;;
D)
    step verify 240 python -m lkconv verify --quick --jobs 15
    step pytest_gpu 90 python -m pytest -q -n 14 -p no:benchmark tests/ops -k "gpu or igemm or conv1d"
    step bench_short1d 60 python -m lkconv bench --op short_conv1d --out "$OUT/short1d"
    step bench_nchw_subset 200 python -m lkconv bench --jobs 15 --dtypes fp32,bf16 --layouts nchw --shapes "unireplknet_t.s3,inceptionnext_t.band,slak_t.s1.wide,convnext_t.s1,replknet_31b.s1" --out "$OUT/nchw_subset"
    ;;
E)
    step blocks_on_device 120 python -m pytest -q -n 8 -p no:benchmark tests/nn/test_blocks_on_device.py
    step bench_nhwc_fp32 150 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nhwc --out "$OUT/nhwc_fp32"
    step bench_nhwc_bf16 150 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nhwc --out "$OUT/nhwc_bf16"
    step tune_direct 120 python benchmarks/tune_direct.py --shapes replknet_31b.s1,unireplknet_t.s1,slak_t.s1.wide --configs bfloat16:nchw,fp32:nhwc --jobs 15 --out "$OUT/tune_direct.json"
    ;;
O)
    step verify_conv1d 90 python -m lkconv verify --ops conv1d
    step pytest_cli 90 python -m pytest -q -p no:benchmark tests/tools/test_cli.py tests/ops/test_conv1d.py -n 8
    step bench_graph 250 python -m lkconv bench --graph --jobs 15 --dtypes fp32,bf16 --layouts nchw --out "$OUT/graph"
    step bench_short_graph 60 python -m lkconv bench --graph --op short_conv1d --out "$OUT/short1d_graph"
    ;;
N)
    step verify_igemm 220 python -m lkconv verify --quick --algorithms implicit_gemm --jobs 15
    step pytest_igemm 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step bench_short1d 60 python -m lkconv bench --op short_conv1d --out "$OUT/short1d"
    ;;
M)
    step bench_short1d 80 python -m lkconv bench --op short_conv1d --out "$OUT/short1d"
    step verify_igemm 120 python -m lkconv verify --quick --algorithms implicit_gemm,auto --jobs 15
    step tune_igemm 110 python benchmarks/tune_igemm.py --shapes replknet_31b.s3,unireplknet_t.s1,replknet_31b.s2 --json "$OUT/tune_igemm.json"
    step bench_bf16 100 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --shapes "replknet_31b.s2,replknet_31b.s3,unireplknet_t.s1,unireplknet_t.s3" --out "$OUT/bf16"
    ;;
L)
    step verify 230 python -m lkconv verify --quick --jobs 15
    step tune_igemm 150 python benchmarks/tune_igemm.py --json "$OUT/tune_igemm.json"
    step bench_bf16 150 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw,nhwc --shapes "replknet_31b.s1,replknet_31b.s2,replknet_31b.s3" --out "$OUT/bf16"
    ;;
K)
    step verify_igemm 120 python -m lkconv verify --quick --algorithms implicit_gemm --jobs 15
    step pytest_igemm 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_igemm 200 python benchmarks/tune_igemm.py --json "$OUT/tune_igemm.json"
    [ -f benchmarks/tune_short1d.py ] && step tune_short1d 100 python benchmarks/tune_short1d.py
    step bench_bf16 100 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw,nhwc --shapes "replknet_31b.s1,slak_t.s1.long,unireplknet_t.s1" --out "$OUT/bf16"
    ;;
J)
    step verify_igemm 200 python -m lkconv verify --quick --algorithms implicit_gemm,auto --jobs 15
    step pytest_igemm 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_igemm 280 python benchmarks/tune_igemm.py --json "$OUT/tune_igemm.json"
    ;;
F)
    step verify 250 python -m lkconv verify --quick --jobs 15
    step blocks_on_device 280 python -m pytest -q -n 15 -p no:benchmark -rf tests/nn/test_blocks_on_device.py
    ;;
G)
    step bench_nhwc_fp32 270 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nhwc --out "$OUT/nhwc_fp32"
    step bench_bf16_nchw 270 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --out "$OUT/bf16_nchw"
    ;;
P)
    step pytest_gpu 170 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py tests/ops/test_conv1d.py tests/ops/test_depthwise2d_igemm.py tests/tools/test_cli.py
    step verify_conv1d 150 python -m lkconv verify --ops conv1d
    step tune_long1d 150 python benchmarks/tune_long1d.py --shapes hyena_4k,hyena_1k --dtypes bf16,fp32 --warps 8 --block-rows 16,32,64 --json "$OUT/tune_long1d.json"
    step bench_long 100 python -m lkconv bench --op long_conv1d --dtypes fp32,bf16 --out "$OUT/long1d"
    ;;
R)
    step tune_long1d_stages 200 python benchmarks/tune_long1d.py --shapes hyena_4k,sgconv_16k --dtypes bf16,fp32 --warps 8 --block-rows 16,32 --stages 1,2 --json "$OUT/tune_long1d_stages.json"
    step tune_long1d_fp16 120 python benchmarks/tune_long1d.py --shapes hyena_4k --dtypes fp16 --warps 8 --block-rows 16 --precisions tf32,tf32x3 --json "$OUT/tune_long1d_fp16.json"
    step bench_long_graph 150 python -m lkconv bench --graph --op long_conv1d --dtypes fp32,bf16 --out "$OUT/long1d_graph"
    step bench_short_graph 60 python -m lkconv bench --graph --op short_conv1d --out "$OUT/short1d_graph"
    ;;
Q)
    step verify 200 python -m lkconv verify --quick --jobs 15
    step tune_igemm_slak 60 python benchmarks/tune_igemm.py --shapes slak_t.s1.long,slak_t.s1.wide --dtypes bf16
    step bench_slak 100 python -m lkconv bench --jobs 15 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes slak_t.s1.long --out "$OUT/slak"
    step bench_graph 200 python -m lkconv bench --graph --jobs 15 --dtypes fp32,bf16 --layouts nchw --out "$OUT/graph"
    ;;
S)
    step pytest_fused 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py
    step tune_bf16 200 python benchmarks/tune_long1d.py --shapes hyena_4k --dtypes bf16 --warps 8 --block-rows 16,32 --pairs 1,2 --precisions tf32,bf16 --json "$OUT/tune_bf16.json"
    step tune_fp32 150 python benchmarks/tune_long1d.py --shapes hyena_4k --dtypes fp32 --warps 4,8 --block-rows 16,32 --pairs 1,2 --json "$OUT/tune_fp32.json"
    ;;
T)
    step pytest_fused 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py
    T1="python benchmarks/tune_long1d.py --warps 8"
    step t_4k_bf16 100 $T1 --shapes hyena_4k --dtypes bf16 --precisions bf16 --block-rows 32,64 --pairs 2,4 --json "$OUT/t_4k_bf16.json"
    step t_4k_fp32 100 $T1 --shapes hyena_4k --dtypes fp32,fp16 --precisions bf16x3 --block-rows 16,32 --pairs 1,2 --json "$OUT/t_4k_fp32.json"
    step t_1k_bf16 60 $T1 --shapes hyena_1k --dtypes bf16 --precisions bf16 --block-rows 32,64 --pairs 2,4 --json "$OUT/t_1k_bf16.json"
    step t_16k 60 $T1 --shapes sgconv_16k --dtypes bf16,fp32 --precisions bf16,bf16x3 --block-rows 16 --pairs 1 --json "$OUT/t_16k.json"
    ;;
U)
    step pytest_fused 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py tests/ops/test_conv1d.py
    T1="python benchmarks/tune_long1d.py"
    step t_4k_warps 80 $T1 --shapes hyena_4k --dtypes bf16 --precisions bf16 --block-rows 32 --pairs 2 --warps 4,16 --json "$OUT/t_4k_warps.json"
    step t_4k_stages 50 $T1 --shapes hyena_4k --dtypes bf16 --precisions bf16 --block-rows 32 --pairs 2 --warps 8 --stages 2 --json "$OUT/t_4k_stages.json"
    step t_6k 90 $T1 --shapes hyena_6000 --dtypes bf16 --precisions bf16 --block-rows 16,32 --pairs 1,2 --warps 8 --json "$OUT/t_6k.json"
    step verify_conv1d 120 python -m lkconv verify --ops conv1d
    step bench_long 150 python -m lkconv bench --op long_conv1d --dtypes fp32,bf16 --out "$OUT/long1d"
    ;;
V)
    step bench_long 200 python -m lkconv bench --op long_conv1d --dtypes fp32,bf16 --out "$OUT/long1d"
    step verify_conv1d 120 python -m lkconv verify --ops conv1d
    step pytest_1d 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py tests/ops/test_conv1d.py
    step bench_slak 80 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --shapes slak_t.s1.long --out "$OUT/slak"
    ;;
W)
    step bench_long_bf16 170 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    step verify_conv1d 280 python -m lkconv verify --ops conv1d
    ;;
X)
    step check_long1d 240 python benchmarks/check_long1d.py
    step bench_slak 120 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --shapes slak_t.s1.long --out "$OUT/slak"
    step backward_host 90 python benchmarks/backward_host.py
    ;;
Y)
    step verify 560 python -m lkconv verify --quick --jobs 15
    ;;
Z)
    step backward_host 120 python benchmarks/backward_host.py --profile --shapes unireplknet_t.s3,inceptionnext_t.band
    step host_s3 90 python benchmarks/host_profile.py --shape unireplknet_t.s3
    ;;
AA)
    small=inceptionnext_t.band,unireplknet_t.dil,unireplknet_t.s3,convnext_t.s1,yolov13_n.dsconv,van_b0.lka_dil
    step pytest_auto 120 python -m pytest -q -p no:benchmark tests/ops/test_depthwise2d.py -k "gpu_time or cuda_graph or autotune or whole_step or auto"
    step bench_graph 200 python -m lkconv bench --graph --jobs 15 --dtypes fp32,bf16 --layouts nchw --shapes "$small" --out "$OUT/graph"
    step bench_eager 150 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw --shapes "$small" --out "$OUT/eager"
    ;;
AB)
    big=slak_t.s1.long,replknet_31b.s1,replknet_31b.s2
    step tune_nhwc 540 python benchmarks/tune_direct.py --wide --configs fp32:nhwc --shapes "$big" --nhwc-shapes "$big" --jobs 15 --out "$OUT/tune_nhwc.json"
    ;;
AC)
    step tune_slak 240 python benchmarks/tune_direct.py --only 'default|r\d+' --configs fp32:nchw,fp32:nhwc --shapes slak_t.s1.long --nhwc-shapes slak_t.s1.long --jobs 15
    step bench_slak 150 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw,nhwc --shapes slak_t.s1.long --out "$OUT/slak"
    ;;
AD)
    step verify 300 python -m lkconv verify --quick --jobs 15 --ops depthwise2d
    step bench_graph 270 python -m lkconv bench --graph --jobs 15 --dtypes fp32 --layouts nchw --out "$OUT/graph"
    ;;
AE)
    big=replknet_31b.s1,replknet_31b.s2,replknet_31b.s3,slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step verify_fft 150 python -m lkconv verify --quick --jobs 15 --ops depthwise2d --algorithms fft,auto
    step bench_big 330 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw,nhwc --shapes "$big" --out "$OUT/big"
    ;;
AF)
    step fft_breakdown 130 python benchmarks/fft_breakdown.py --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3
    step verify_fft 150 python -m lkconv verify --quick --jobs 15 --ops depthwise2d --algorithms fft
    step bench_31b 250 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw,nhwc --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3 --out "$OUT/31b"
    ;;
AG)
    step fft_s1 100 python benchmarks/fft_breakdown.py --shapes replknet_31b.s1 --profile
    step fft_s3 60 python benchmarks/fft_breakdown.py --shapes replknet_31b.s3 --layouts nchw --profile
    ;;
AH)
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step fft_pieces 90 python benchmarks/fft_breakdown.py --shapes replknet_31b.s1,replknet_31b.s2
    step verify_fft 150 python -m lkconv verify --quick --jobs 15 --ops depthwise2d --algorithms fft
    step bench_31b 160 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw,nhwc --shapes replknet_31b.s1,replknet_31b.s2 --out "$OUT/31b"
    ;;
AI)
    k13=replknet_31b.s1,replknet_31b.s2,replknet_31b.s3,slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1,unireplknet_t.s3
    step bench_k13 300 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw --shapes "$k13" --out "$OUT/k13"
    step bench_nhwc 230 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nhwc --shapes slak_t.s1.long,replknet_31b.s1,replknet_31b.s2 --out "$OUT/nhwc"
    ;;
AJ)
    step verify 260 python -m lkconv verify --quick --jobs 15 --ops depthwise2d
    step bench_slak 250 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw,nhwc --shapes slak_t.s1.long,slak_t.s1.wide --out "$OUT/slak"
    ;;
AK)
    step fft_frames 200 python benchmarks/fft_breakdown.py --frames --layouts nchw --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3,slak_t.s1.long,unireplknet_t.s1,unireplknet_t.s3
    ;;
AL)
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step bench_fp32 150 python -m lkconv bench --jobs 15 --dtypes fp32 --layouts nchw --shapes replknet_31b.s2,slak_t.s1.wide --out "$OUT/fp32"
    step bench_bf16 220 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nchw --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3 --out "$OUT/bf16"
    ;;
AM)
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step verify_fft 200 python -m lkconv verify --quick --jobs 15 --ops depthwise2d --algorithms fft,auto
    step fft_s1 60 python benchmarks/fft_breakdown.py --shapes replknet_31b.s1 --layouts nchw
    ;;
AN)
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step fft_s1 60 python benchmarks/fft_breakdown.py --shapes replknet_31b.s1,replknet_31b.s2 --layouts nchw
    step verify_fft 120 python -m lkconv verify --quick --jobs 15 --ops depthwise2d --algorithms fft
    ;;
AO)
    step pytest_ops 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py tests/ops/test_depthwise2d.py
    ;;
AP)
    step pytest_ops 170 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py tests/ops/test_depthwise2d.py
    step tune_wgrad_nchw 220 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 15 --configs fp32:nchw --out "$OUT/tune_wgrad_nchw.json"
    step tune_wgrad_other 150 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 15 --configs fp32:nhwc,bf16:nchw --nhwc-shapes "replknet_31b.s1,replknet_31b.s3,unireplknet_t.s1,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/tune_wgrad_other.json"
    ;;
AQ)
    step pytest_wgrad 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "wgrad or direct"
    step tune_wgrad_nchw 230 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 16 --configs fp32:nchw --out "$OUT/tune_wgrad_nchw.json"
    step tune_wgrad_other 170 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 16 --configs fp32:nhwc,bf16:nchw --nhwc-shapes "replknet_31b.s2,replknet_31b.s3,unireplknet_t.s1,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/tune_wgrad_other.json"
    ;;
AR)
    step pytest_wgrad 120 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "wgrad or config_variants"
    step tune_wgrad 330 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 16 --only "strips|planes|planes_t.*" --configs fp32:nchw,fp32:nhwc --nhwc-shapes "replknet_31b.s3,unireplknet_t.s1,slak_t.s1.wide" --out "$OUT/tune_wgrad.json"
    ;;
AS)
    step verify_direct 150 python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms direct
    step bench_k13 330 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s1,unireplknet_t.s3,slak_t.s1.wide,replknet_31b.s1" --out "$OUT/k13"
    ;;
AT)
    step verify 420 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    step bench_s3 60 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes unireplknet_t.s3 --out "$OUT/s3"
    step bench_s3_graph 60 python -m lkconv bench --graph --jobs 16 --dtypes fp32 --layouts nchw --shapes unireplknet_t.s3 --out "$OUT/s3_graph"
    ;;
AU)
    step tune_out 300 python benchmarks/tune_direct.py --directions fwd,dgrad --jobs 16 --only "default|out\d" --configs fp32:nchw --shapes "replknet_31b.s2,replknet_31b.s3,unireplknet_t.s1,unireplknet_t.s3,slak_t.s1.wide,replknet_31b.s1" --out "$OUT/tune_out.json"
    ;;
AV)
    step bench_cl_bf16 400 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nhwc,nchw --shapes "replknet_31b.s3,unireplknet_t.s1,replknet_31b.s2" --out "$OUT/cl_bf16"
    ;;
AW)
    step tune_wgrad 300 python benchmarks/tune_direct.py --planes --directions wgrad --jobs 16 --configs fp32:nhwc,bf16:nchw --shapes "replknet_31b.s3,unireplknet_t.s1" --nhwc-shapes "replknet_31b.s3,unireplknet_t.s1" --out "$OUT/tune_wgrad.json"
    ;;
AX)
    step bench_cl 240 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw,nhwc --shapes "replknet_31b.s3,unireplknet_t.s1" --out "$OUT/cl"
    ;;
AY)
    step tune_prepad 200 python benchmarks/tune_direct.py --directions fwd,dgrad --jobs 16 --only "default|prepad.*" --configs bf16:nchw,fp16:nchw --shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s1,unireplknet_t.s3,replknet_31b.s1" --nhwc-shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s1,unireplknet_t.s3,replknet_31b.s1" --out "$OUT/tune_prepad.json"
    ;;
AZ)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-AZ step bench 330 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nchw --shapes "replknet_31b.s3,unireplknet_t.s1,replknet_31b.s2" --out "$OUT/bench"
    ;;
BA)
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
BC)
    step pytest_direct 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "direct or wgrad or prepad or empty"
    step tune_border 200 python benchmarks/tune_direct.py --border --jobs 16 --configs fp32:nchw,fp32:nhwc,bf16:nchw --shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3" --nhwc-shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3" --out "$OUT/tune_border.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BC step bench 230 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes "replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3,unireplknet_t.s1" --out "$OUT/bench"
    ;;
BD)
    step profile_s3 200 python benchmarks/profile_step.py --algorithm direct --shapes replknet_31b.s3 --dtypes fp32,bf16 --layouts nchw,nhwc
    step profile_u1_bf16 80 python benchmarks/profile_step.py --algorithm direct --shapes unireplknet_t.s1 --dtypes bf16 --layouts nchw
    step profile_u1_nhwc 80 python benchmarks/profile_step.py --algorithm direct --shapes unireplknet_t.s1 --dtypes fp32 --layouts nhwc
    step tune_u1_nhwc 150 python benchmarks/tune_direct.py --wide --jobs 16 --only "default|t8x16w4|t16x16w8|t16x16w4|t4x32w4|planes_t8x16w4|planes_t16x16w4" --directions fwd,dgrad --configs fp32:nhwc --shapes unireplknet_t.s1 --nhwc-shapes unireplknet_t.s1 --out "$OUT/tune_u1_nhwc.json"
    step tune_u1_nhwc_w 100 python benchmarks/tune_direct.py --planes --jobs 16 --only "default|planes_t8x16w4|planes_t16x16w4" --directions wgrad --configs fp32:nhwc --shapes unireplknet_t.s1 --nhwc-shapes unireplknet_t.s1 --out "$OUT/tune_u1_nhwc_w.json"
    ;;
BE)
    for cfg in fp32:nchw fp32:nhwc bf16:nchw bf16:nhwc; do
        step "host_${cfg/:/_}" 90 python benchmarks/backward_host.py --shapes replknet_31b.s3 --batch 4 --dtype "${cfg%:*}" --layout "${cfg#*:}" $([ "$cfg" = bf16:nhwc ] && echo --profile)
    done
    ;;
BF)
    for cfg in fp32:nchw fp32:nhwc bf16:nchw bf16:nhwc; do
        step "host_${cfg/:/_}" 60 python benchmarks/backward_host.py --shapes replknet_31b.s3 --batch 4 --dtype "${cfg%:*}" --layout "${cfg#*:}"
    done
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BF step bench 300 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes "replknet_31b.s3,unireplknet_t.s1,replknet_31b.s2" --out "$OUT/bench"
    ;;
BG)
    step tune_border 240 python benchmarks/tune_direct.py --border --directions fwd,dgrad --jobs 16 --configs fp32:nchw,fp32:nhwc --shapes "replknet_31b.s1,slak_t.s1.long,unireplknet_t.s1" --nhwc-shapes "slak_t.s1.long,unireplknet_t.s1" --out "$OUT/tune_border.json"
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
BH)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BH step bench 330 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --out "$OUT/bench"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BH step bench_graph 200 python -m lkconv bench --graph --jobs 16 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes "replknet_31b.s3,unireplknet_t.s1,replknet_31b.s2" --out "$OUT/graph"
    ;;
BI)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BI step bench 300 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "slak_t.s1.wide,van_b0.lka_dil,bevanet.sdlska,cfsr.convmod,puyun.lka_latlon,yolov13_n.dsconv,downsample.s2" --out "$OUT/bench"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BI step bench_graph 150 python -m lkconv bench --graph --jobs 16 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes "replknet_31b.s3" --out "$OUT/graph"
    ;;
BJ)
    for round in 1 2; do
        step "host_now_$round" 60 python benchmarks/backward_host.py --shapes unireplknet_t.s3,yolov13_n.dsconv
        (cd prev_tree && step "host_prev_$round" 60 python benchmarks/backward_host.py --shapes unireplknet_t.s3,yolov13_n.dsconv)
    done
    ;;
BK)
    step tune_border 240 python benchmarks/tune_direct.py --border --directions fwd,dgrad --jobs 16 --configs fp32:nchw,fp32:nhwc --shapes "replknet_31b.s1,slak_t.s1.long,unireplknet_t.s1" --nhwc-shapes "slak_t.s1.long,unireplknet_t.s1" --out "$OUT/tune_border.json"
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
BL)
    step pytest_strips 300 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "one_launch_per_strip or variants_agree or large_kernels or strip_kernel or planes_kernel"
    step tune_border_w 240 python benchmarks/tune_direct.py --border --directions wgrad --jobs 16 --configs fp32:nchw --shapes "slak_t.s1.long" --out "$OUT/tune_border_w.json"
    ;;
BM)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BM step bench 240 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1,replknet_31b.s1" --out "$OUT/bench"
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
BN)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BN step bench 540 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --out "$OUT/bench"
    ;;
BO)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BO step bench 540 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nhwc --out "$OUT/bench"
    ;;
BQ)
    step pytest_igemm 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "kept or matches_float64"
    for mb in 0 512; do
        LKCONV_IGEMM_WORKSPACE_MB=$mb step "tune_igemm_mb$mb" 120 python benchmarks/tune_igemm.py --quick --shapes replknet_31b.s2,replknet_31b.s1 --dtypes bf16
    done
    ;;
BR)
    step tune_chunks 500 python benchmarks/tune_direct.py --chunks --directions wgrad --jobs 16 --configs fp32:nchw,fp32:nhwc,bf16:nchw --nhwc-shapes "slak_t.s1.long,convnext_t.s1,cfsr.convmod,yolov13_n.dsconv" --out "$OUT/tune_chunks.json"
    ;;
BS)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BS step bench 400 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nhwc --shapes replknet_31b.s1 --out "$OUT/bench"
    ;;
BT)
    step tune_nhwc 540 python benchmarks/tune_direct.py --wide --jobs 16 --configs fp32:nchw,fp32:nhwc --shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1" --nhwc-shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1" --out "$OUT/tune_nhwc.json"
    ;;
BU)
    step tune_small 300 python benchmarks/tune_direct.py --wide --only "default|t8x32w8|t8x16w4|t4x32w4" --directions fwd,dgrad,wgrad --jobs 16 --configs fp32:nhwc --shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,yolov13_n.dsconv,downsample.s2,inceptionnext_t.band,unireplknet_t.dil" --nhwc-shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,yolov13_n.dsconv,downsample.s2,inceptionnext_t.band,unireplknet_t.dil" --out "$OUT/tune_small.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BU step bench 290 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nhwc --shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,bevanet.sdlska,yolov13_n.dsconv,downsample.s2,inceptionnext_t.band,unireplknet_t.dil" --out "$OUT/bench"
    ;;
BV)
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BV step bench 270 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nhwc,nchw --shapes "cfsr.convmod,puyun.lka_latlon,van_b0.lka_dil,convnext_t.s1" --out "$OUT/bench"
    ;;
BW)
    step profile_cfsr 200 python benchmarks/profile_step.py --algorithm direct --shapes cfsr.convmod,van_b0.lka_dil --dtypes fp32 --layouts nhwc,nchw
    ;;
BX)
    step tune_small 240 python benchmarks/tune_direct.py --wide --only "default|t8x32w8|t8x16w4|t4x32w4" --directions fwd,dgrad,wgrad --jobs 16 --configs fp32:nhwc --shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,yolov13_n.dsconv,downsample.s2,inceptionnext_t.band,unireplknet_t.dil" --nhwc-shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,yolov13_n.dsconv,downsample.s2,inceptionnext_t.band,unireplknet_t.dil" --out "$OUT/tune_small.json"
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
BY)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BY step bench 560 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nhwc --out "$OUT/bench"
    ;;
BZ)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-BZ step bench_graph 400 python -m lkconv bench --graph --jobs 16 --dtypes fp32 --layouts nchw,nhwc --shapes "cfsr.convmod,puyun.lka_latlon,convnext_t.s1,van_b0.lka_dil,yolov13_n.dsconv,downsample.s2,unireplknet_t.s1" --out "$OUT/graph"
    ;;
CA)
    step pytest_wgrad 300 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "wgrad or partial_sum or per_program or chunk or whole_step or interleaved or matches_float64"
    step verify 300 python -m lkconv verify --quick --jobs 16 --ops depthwise2d
    ;;
CB)
    for round in 1 2; do
        step "host_now_$round" 60 python benchmarks/step_sync.py --shapes unireplknet_t.s3,yolov13_n.dsconv
        (cd prev_tree && step "host_prev_$round" 60 python benchmarks/step_sync.py --shapes unireplknet_t.s3,yolov13_n.dsconv)
    done
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CB step bench 330 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --out "$OUT/bench"
    ;;
CC)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CC step bench_small 540 python -m lkconv bench --jobs 16 --dtypes fp32,bf16 --layouts nchw,nhwc --shapes "inceptionnext_t.band,unireplknet_t.dil,yolov13_n.dsconv,unireplknet_t.s3,convnext_t.s1,bevanet.sdlska" --out "$OUT/small"
    ;;
CE)
    step pytest_partial 300 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "partial_sum or per_program or chunk or handed"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CE step bench_small 280 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "yolov13_n.dsconv,unireplknet_t.s3,van_b0.lka_dil,cfsr.convmod" --out "$OUT/small"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CE step bench_small_again 200 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "yolov13_n.dsconv,unireplknet_t.s3,van_b0.lka_dil,cfsr.convmod" --out "$OUT/small_again"
    ;;
CF)
    [ -n "${SKIP_TESTS:-}" ] || step pytest_wgrad 240 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d.py -k "partial_sum or per_program or chunk or handed or random_geometries or variants_agree"
    step tune_split 480 python benchmarks/tune_direct.py --split --directions wgrad --jobs 16 --configs fp32:nchw,fp32:nhwc --shapes "slak_t.s1.long,van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --nhwc-shapes "slak_t.s1.long,van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --out "$OUT/tune_split.json"
    ;;
CG)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CG step bench_split 420 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw,nhwc --shapes "slak_t.s1.long,van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --out "$OUT/bench_split"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CG step bench_graph 150 python -m lkconv bench --graph --jobs 16 --dtypes fp32 --layouts nchw,nhwc --shapes "slak_t.s1.long,van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --out "$OUT/bench_graph"
    ;;
CJ)  # side streams: their GPU tests, then eager steps with them off and on (kernels compiled in parallel first)
    step pytest_streams 200 python -m pytest -q -p no:benchmark tests/ops/test_streams.py tests/ops/test_launch.py
    step verify_streams 200 python -m lkconv verify --quick --ops depthwise2d --algorithms direct --jobs 15
    for s in slak_t.s1.long slak_t.s1.wide unireplknet_t.s1; do
        timeout 200 python benchmarks/overlap_probe.py --warm --cases step --shapes $s > /dev/null 2>&1 &
    done
    wait
    step overlap_step 200 python benchmarks/overlap_probe.py --cases step --shapes "slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1"
    ;;
CL)  # after the implicit-GEMM rework and float32-only side streams: their GPU tests with room to compile, verify of
     # every algorithm, bf16 NCHW bench of the K >= 13 shapes
    step pytest_streams_igemm 300 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_streams.py tests/ops/test_launch.py tests/ops/test_depthwise2d_igemm.py
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CL step bench_bf16 280 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s1,unireplknet_t.s3,replknet_31b.s1,replknet_31b.s2,replknet_31b.s3,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/bench_bf16"
    ;;
DA)  # whole-row implicit-GEMM tiles against the band tiles
    step pytest_igemm 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_rows 200 python benchmarks/tune_igemm.py --jobs 16 --shapes replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3 --dtypes bf16,fp32 --configs st3,bm64:st3,bm256:w8:st3 --baseline "${BASELINE:-out/igemm_base.py}" --json "$OUT/tune_rows.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DA step bench_bf16 200 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s3,replknet_31b.s2,replknet_31b.s3" --out "$OUT/bench_bf16"
    ;;
DB)  # after DA: whole-row tiles from aligned row copies by default; the same A/B with the in-place form beside
    step pytest_igemm 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_rows 180 python benchmarks/tune_igemm.py --jobs 16 --shapes replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3 --dtypes bf16 --configs st3,bm128:st3,bm32:st3,bm64:w2:st3,bm64:st3:table,bm64:st3:cols-rows_in_place --baseline "${BASELINE:-out/igemm_base.py}" --json "$OUT/tune_rows.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DB step bench_bf16 200 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s3,replknet_31b.s2,replknet_31b.s3" --out "$OUT/bench_bf16"
    step verify_igemm 120 python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DC)  # after DB: whole-row tiles' rows and warps set from DB's sweep; bf16 bench, then verify with room to compile
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DC step bench_bf16 170 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s3,replknet_31b.s2,replknet_31b.s3" --out "$OUT/bench_bf16"
    step pytest_igemm 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step verify_igemm ${VERIFY_S:-260} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DD)  # after DC: whole rows against the band on the 51-tap and 13x13 layers of 56-column rows (bf16), and their bench
    step tune_slak 250 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1 --dtypes bf16 --configs st3,st3:cols-band,bm64:st3,bm64:w2:st3 --json "$OUT/tune_slak.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DD step bench_bf16 300 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1" --out "$OUT/bench_bf16"
    ;;
DE)  # kernel rows stacked into one product (K = kr * BK) on whole-row tiles; whole rows against the band on slak
    step pytest_igemm 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_kr 230 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3 --dtypes bf16 --configs st3,kr2:st3,kr4:st3,w4:kr4:st3,bm128:kr2:st3,table:kr4:st3,bm128:w4:kr4:st3 --json "$OUT/tune_kr.json"
    step tune_slak 230 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes slak_t.s1.long,slak_t.s1.wide,unireplknet_t.s1 --dtypes bf16 --configs st3,st3:cols-band,bm64:st3,kr2:st3,st3:cols-band:kr2 --json "$OUT/tune_slak.json"
    ;;
DF)  # after DE: kernel rows per product and per weight-gradient program; transposed problems stored in place
    step pytest_igemm 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_ab 80 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes unireplknet_t.s3,replknet_31b.s3 --dtypes bf16 --configs st3,kr1:st3 --baseline "${BASELINE:-out/igemm_base.py}" --json "$OUT/tune_ab.json"
    step tune_ab_slak 80 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.long --dtypes bf16 --configs st3 --baseline "${BASELINE:-out/igemm_base.py}" --json "$OUT/tune_ab_slak.json"
    step tune_wgrad 110 python benchmarks/tune_igemm.py --jobs 16 --shapes replknet_31b.s3,replknet_31b.s2,unireplknet_t.s3,slak_t.s1.wide --dtypes bf16 --configs st3 --wgrad-kernel-rows 1,2,4 --json "$OUT/tune_wgrad.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DF step bench_bf16 200 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "replknet_31b.s3,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/bench_bf16"
    ;;
DG)  # after DF: GPU tests; warps/stages of whole rows on slak; bf16 bench with every step's processes killed after it
    step pytest_igemm 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_slak 70 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes slak_t.s1.long,slak_t.s1.wide --dtypes bf16 --configs st3,w8:st3,st4,bm256:w8:st3 --json "$OUT/tune_slak.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DG step bench_bf16 230 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "replknet_31b.s3,unireplknet_t.s3,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/bench_bf16"
    ;;
DH)  # whole rows read in place where they are 16-byte aligned (width known when compiling) against the row copy
    step pytest_rows 40 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "whole_row or dense_aligned or kernel_rows"
    step tune_copy 45 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.wide --dtypes bf16 --configs st3 --json "$OUT/tune_copy.json"
    step tune_in_place 45 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.wide --dtypes bf16 --configs st3:cols-rows_in_place --json "$OUT/tune_in_place.json"
    ;;
DI)  # after DH: planned, directly launched implicit-GEMM calls (host time), aligned rows read in place by default
    step pytest_igemm 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py tests/ops/test_launch.py
    step igemm_host 90 python benchmarks/igemm_host.py --shapes unireplknet_t.s3,replknet_31b.s3,slak_t.s1.wide
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DI step bench_bf16 260 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s3,replknet_31b.s3,slak_t.s1.long,slak_t.s1.wide" --out "$OUT/bench_bf16"
    step verify_igemm ${VERIFY_S:-150} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DJ)  # fp32 (tf32x3) whole rows on the 51-tap layers, read in place: every direction against the direct kernels, the
    # fp32 bench under "auto" (15x at K >= 27 is missed on slak_t.s1.wide); whole rows in image order on 14-column rows
    step tune_fp32 200 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.wide,slak_t.s1.long --dtypes fp32 --configs st3,st2,w8:st2 --json "$OUT/tune_fp32.json"
    step tune_order 100 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes unireplknet_t.s3,replknet_31b.s3 --dtypes bf16 --configs st3,images:st3,images:bm128:st3 --json "$OUT/tune_order.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DJ step bench_fp32 280 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "slak_t.s1.wide,slak_t.s1.long" --out "$OUT/bench_fp32"
    ;;
DK)  # block-Toeplitz row blocks (IgemmConfig.row_block) against one output row per tile, on 14- and 28-column rows
    step pytest_rb 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "row_blocks or planned"
    step tune_rb 200 python benchmarks/tune_igemm.py --jobs 16 --shapes unireplknet_t.s3,replknet_31b.s3,replknet_31b.s2 --dtypes bf16 --configs st3,rb2:cols-rows:st3,rb4:cols-rows:st3,rb4:cols-rows:w8:st3,rb8:cols-rows:w8:st3,rb4:cols-rows:bm32:st3 --json "$OUT/tune_rb.json"
    ;;
DL)  # DJ's fp32 sweep and bench on the 51-tap layers, and DK's row-block sweep (unireplknet_t.s1 added), in one lease
    step tune_fp32 150 python benchmarks/tune_igemm.py --jobs 16 --shapes slak_t.s1.wide,slak_t.s1.long --dtypes fp32 --configs st3,st2,w8:st2 --json "$OUT/tune_fp32.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DL step bench_fp32 200 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes "slak_t.s1.wide,slak_t.s1.long" --out "$OUT/bench_fp32"
    step tune_rb 190 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes unireplknet_t.s3,unireplknet_t.s1,replknet_31b.s3 --dtypes bf16 --configs st3,kr2:st3,rb2:cols-rows:st3,rb4:cols-rows:st3,rb4:cols-rows:w8:st3,rb2:cols-rows:w8:st3 --json "$OUT/tune_rb.json"
    ;;
DM)  # 4-row block-Toeplitz tiles by default where every output row reaches every input row (replknet_31b.s3);
    # more tiles for the 13x13 layers; the bf16 bench of every K >= 13 shape
    step pytest_igemm 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py tests/ops/test_launch.py
    step tune_s3 60 python benchmarks/tune_igemm.py --jobs 16 --shapes replknet_31b.s3 --dtypes bf16 --configs st3,rb1:st3 --json "$OUT/tune_s3.json"
    step tune_13 80 python benchmarks/tune_igemm.py --jobs 16 --no-gradients --shapes unireplknet_t.s3,unireplknet_t.s1 --dtypes bf16 --configs st3,kr4:st3,rb4:cols-rows:w8:bm32:st3,rb8:cols-rows:w8:st3,rb2:cols-rows:w8:st2,rb2:cols-rows:w8:bm32:st3,cols-band:bn16:kr2:st3,cols-band:bn32:kr2:st3 --json "$OUT/tune_13.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DM step bench_bf16 220 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw,nhwc --shapes "replknet_31b.s3,unireplknet_t.s3,unireplknet_t.s1,replknet_31b.s1,replknet_31b.s2" --out "$OUT/bench_bf16"
    step verify_igemm ${VERIFY_S:-100} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DN)  # whole flattened planes per tile (IgemmConfig.plane) against the default on the 14- and 28-row layers
    step pytest_plane 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "plane or planned or default_row_block"
    step tune_plane 150 python benchmarks/tune_igemm.py --jobs 16 --shapes unireplknet_t.s3,replknet_31b.s3,unireplknet_t.dil,replknet_31b.s2 --dtypes bf16,fp32 --configs st3,plane:st3,plane:bn32:st3,plane:bn128:w8:st3,plane:bm32:st3,plane:w8:st3,plane:st2 --json "$OUT/tune_plane.json"
    step verify_igemm ${VERIFY_S:-150} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DP)  # band row blocks (column blocks in the product's rows) on unireplknet_t.s1; the plane canvas on unireplknet_t.s3;
    # kernel times through CUDA-graph replays (--graph), then lkconv bench --graph of both (the defaults)
    step pytest_forms 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "plane or row_block or planned or inside"
    step tune_s3 130 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s3 --dtypes bf16 --configs noplane:st3,plane:st3,plane:runs:st3,plane:canvas:st3,plane:canvas:w8:st3,plane:canvas:bn64:w8:st3,plane:canvas:bn128:w8:st3,plane:canvas:bn256:w8:st3,plane:runs:canvas:bn64:w8:st3,plane:runs:canvas:bn128:w8:st3 --json "$OUT/tune_s3.json"
    step tune_s1 150 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s1 --dtypes bf16 --configs st3,rb4:w8:st3,rb8:w8:st3,bm64:rb8:w8:st3,bm64:rb4:w4:st3,bm128:rb4:w4:st3,rb2:w4:st3,bm256:rb4:w8:st2 --json "$OUT/tune_s1.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DP step bench_graph 120 python -m lkconv bench --graph --jobs 16 --dtypes bf16 --layouts nchw --directions fwd --shapes "unireplknet_t.s3,unireplknet_t.s1" --out "$OUT/bench_graph"
    ;;
DR)  # after DQ: the new defaults (canvas planes with prefetch at BN 64; 4-row band blocks for 16-bit operands from 13
    # kernel rows): the implicit-GEMM GPU tests, lkconv bench --graph of the 13x13 forwards, verify, eager bf16 bench
    step pytest_igemm 70 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py
    step tune_shifted 80 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s3 --dtypes bf16 --configs plane:st3,plane:shifted_canvas:run4:st3,plane:shifted_canvas:run4:w8:st3 --json "$OUT/tune_shifted.json"
    step tune_table 60 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes unireplknet_t.s1,replknet_31b.s1 --dtypes bf16 --configs st3,rb4:table:st3,bm64:rb4:w4:table:st3,rb4:table:st4,bm64:rb8:w8:table:st3,bm256:rb4:w8:table:st3,rb8:w8:table:st3 --json "$OUT/tune_table.json"
    step tune_local 50 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s3 --dtypes bf16 --configs plane:st3,plane:local_canvas:st3,plane:local_canvas:bn128:w8:st3 --json "$OUT/tune_local.json"
    NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
    NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats --section InstructionStats"
    [ -n "$NCU" ] && step ncu_s3 60 "$NCU" --clock-control none --kernel-name regex:igemm --launch-skip 2 --launch-count 1 $NCU_SECTIONS python benchmarks/ncu_igemm.py --shape unireplknet_t.s3
    [ "${DR_LONG:-1}" = 1 ] && [ -n "$NCU" ] && step ncu_s1 60 "$NCU" --clock-control none --kernel-name regex:igemm --launch-skip 2 --launch-count 1 $NCU_SECTIONS python benchmarks/ncu_igemm.py --shape unireplknet_t.s1
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DR1 step bench_graph 60 python -m lkconv bench --graph --jobs 16 --dtypes bf16 --layouts nchw --directions fwd --shapes "unireplknet_t.s3,unireplknet_t.s1" --out "$OUT/bench_graph"
    step verify_igemm ${VERIFY_S:-100} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    [ "${DR_LONG:-1}" = 1 ] && step tune_rows_pf 60 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes replknet_31b.s3,replknet_31b.s2 --dtypes bf16 --configs st3,rb4:st3,rb4:st3:pf,bm64:rb4:w4:st3:pf --json "$OUT/tune_rows_pf.json"
    [ "${DR_BENCH:-1}" = 1 ] && LKCONV_CACHE_DIR=/tmp/lkconv-cache-DR2 step bench_bf16 120 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw --shapes "unireplknet_t.s3,unireplknet_t.s1,replknet_31b.s2,replknet_31b.s1" --out "$OUT/bench_bf16"
    ;;
EA)  # the staged long_conv1d kernels (columns, rows, output through a float32 workspace) for sgconv_16k and dna_256k
    step pytest_staged 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py
    step tune_staged_bf16 170 python benchmarks/tune_long1d.py --staged --jobs 8 --shapes sgconv_16k,dna_256k --dtypes bf16 --row-lengths 0,2048 --warps 4,8 --block-rows 0 --json "$OUT/tune_staged_bf16.json"
    step tune_staged_fp32 90 python benchmarks/tune_long1d.py --staged --jobs 8 --shapes sgconv_16k,dna_256k --dtypes fp32 --row-lengths 0 --warps 4,8 --block-rows 0 --json "$OUT/tune_staged_fp32.json"
    [ "${EA_BENCH:-1}" = 1 ] && step bench_long_bf16 120 python -m lkconv bench --op long_conv1d --dtypes bf16 --shapes sgconv_16k,dna_256k --out "$OUT/long1d_bf16"
    ;;
EB)  # after EA (staged forward at 1.2 ms on sgconv_16k bf16, 5 ms on dna_256k): rows side by side per program,
    # a channel's rows adjacent in the grid, bfloat16 workspace; where each kernel's time goes, per config
    step pytest_staged 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py tests/ops/test_long_conv1d_fused.py -k "staged or largest or low_precision or embedded or dft_constants"
    step prof_sg_bf16 130 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k --dtypes bf16 --configs q0,q0:r0,q0:p2:w4,q0:p1:w4,q0:p8:w8,q0:ws=f32,q512:w4,q512:p4:w4,q0:bq128,q0:cw8,q0:emb,q2048:w8,q2048:w4 --json "$OUT/prof_sg_bf16.json"
    step prof_dna_bf16 130 python benchmarks/profile_staged.py --jobs 12 --shapes dna_256k --dtypes bf16 --configs q0,q0:r0,q0:bk64,q0:w4,q2048,q2048:p1:w4,q1024,q1024:p2:w4,q0:ws=f32,q0:emb --json "$OUT/prof_dna_bf16.json"
    step prof_fp32 90 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k,dna_256k --dtypes fp32 --configs q0,q0:w4,q2048,q512 --json "$OUT/prof_fp32.json"
    [ "${EB_BENCH:-1}" = 1 ] && step bench_long_bf16 100 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    ;;
EC)  # after EB: 1024-point rows by default (dna_256k: M = 512), two real products for half-empty pairs, "staged_fft"
    # among "auto"'s candidates within MAX_N
    step pytest_staged 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py
    step bench_long_bf16 120 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    step prof_dna_bf16 100 python benchmarks/profile_staged.py --jobs 12 --shapes dna_256k --dtypes bf16 --configs q0,q0:ca128,q0:cw8,q0:ca128:cw8,q0:bq128,q0:ob128 --json "$OUT/prof_dna_bf16.json"
    step bench_long_fp32 100 python -m lkconv bench --op long_conv1d --dtypes fp32 --out "$OUT/long1d_fp32"
    step prof_more 90 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k,dna_256k,hyena_6000,hyena_4k --dtypes fp32,bf16 --configs q0 --json "$OUT/prof_more.json"
    step verify_conv1d 120 python -m lkconv verify --ops conv1d --jobs 8
    ;;
EH)  # the kernel's spectrum made by the staged kernels (rs), channel pairs at batch 1 (ch), four-step columns (c4):
    # their GPU tests, then the staged profile (kernels, the spectrum's own time, forward with it) on dna_256k and on
    # the batched shapes
    step pytest_staged_rs 200 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py -k "on_gpu or row_spectrum or channel_pairs or 65535"
    step prof_rs_dna 170 python benchmarks/profile_staged.py --jobs 12 --shapes dna_256k --dtypes bf16 --configs q0,q0:rs,q0:ch,q0:ch:rs,q0:c4,q0:c4:bq32,q0:ch:rs:c4,q0:ch:rs:c4:p2,q0:ch:rs:c4:jb,q0:ch:rs:c4:r0 --json "$OUT/prof_rs_dna.json"
    step prof_rs_batched 120 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k,hyena_6000,hyena_4k --dtypes bf16 --configs q0,q0:rs,q0:rs:gp4,q0:rs:jb --json "$OUT/prof_rs_batched.json"
    ;;
EI)  # EH cut to a short lease: the new staged GPU tests, dna_256k with the three options, sgconv_16k with the
    # staged kernels' own spectrum
    step pytest_staged_new 150 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py -k "on_gpu or 65535"
    step prof_dna_new 160 python benchmarks/profile_staged.py --jobs 12 --shapes dna_256k --dtypes bf16 --configs q0,q0:c4,q0:ch:rs,q0:ch:rs:c4,q0:ch:rs:c4:p2 --json "$OUT/prof_dna_new.json"
    step prof_sg_rs 70 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k --dtypes bf16 --configs q0,q0:rs --json "$OUT/prof_sg_rs.json"
    ;;
EG)  # EE cut to a short lease: the staged GPU tests, the 12288-point split of hyena_6000 (512- and 1024-point rows,
    # factored twiddles) and sgconv_16k, then lkconv bench --op long_conv1d in bf16
    step pytest_staged 80 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py tests/test_without_triton.py
    step prof_sizes 90 python benchmarks/profile_staged.py --jobs 12 --shapes hyena_6000,sgconv_16k --dtypes bf16 --configs q0,q1024,q0:tf --json "$OUT/prof_sizes.json"
    step bench_long_bf16 120 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    ;;
EE)  # ED with 1024-point rows beside the default (512 on hyena_6000's 12288 points: the staged kernels' 7-smooth
    # transform sizes), then lkconv bench --op long_conv1d in bf16
    step pytest_staged 80 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py tests/test_without_triton.py
    step prof_joint 170 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k,hyena_6000,hyena_4k,dna_256k --dtypes bf16 --configs q0,q1024,q0:tf,q0:gp4,q0:gp4:tf,q0:gp8:tf,q0:gp4:tf:r0,q0:jb,q0:jb:tf,q0:jb:r0 --json "$OUT/prof_joint.json"
    step bench_long_bf16 120 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    ;;
EF)  # DX's decisive sweep: the fused kernels' embedded products against Karatsuba's, with and without the joint
    # backward, at the default two pairs (hyena_4k), and their GPU tests
    step pytest_long1d_emb 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py -k "configs or joint or largest or low_precision or dft_constants"
    step tune_long1d_emb 200 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_4k --dtypes bf16 --warps 8 --block-rows 32 --pairs 2 --products karatsuba,embedded --joint 0,1 --json "$OUT/tune_long1d_emb.json"
    NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
    NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats --section InstructionStats"
    [ -n "$NCU" ] && step ncu_staged_rows 90 "$NCU" --clock-control none --kernel-name regex:staged_rows --launch-skip 2 --launch-count 1 $NCU_SECTIONS python benchmarks/ncu_long1d.py --staged --shape hyena_6000
    ;;
ED)  # after EC: the staged kernels' 128-column default on dna_256k (M = 512), checked and timed as the default
    step pytest_staged 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_staged.py tests/test_without_triton.py
    step prof_dna_bf16 80 python benchmarks/profile_staged.py --jobs 12 --shapes dna_256k,sgconv_16k --dtypes bf16 --configs q0,q0:ob128,q0:bq64:ob128,q0:bq64 --json "$OUT/prof_dna_bf16.json"
    step prof_joint 180 python benchmarks/profile_staged.py --jobs 12 --shapes sgconv_16k,hyena_6000,hyena_4k,dna_256k --dtypes bf16 --configs q0,q0:tf,q0:gp4,q0:gp4:tf,q0:gp8:tf,q0:gp4:tf:r0,q0:jb,q0:jb:tf,q0:jb:r0 --json "$OUT/prof_joint.json"
    step bench_long_bf16 120 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    ;;
DX)  # the fused long_conv1d after the twenty-first session: embedded complex products (real products on interleaved
    # columns) against Karatsuba's, with and without the joint backward (dx and dk's sums from one transform of dy),
    # all reading bf16 DFT matrices and the half (rfft) kernel spectrum: GPU tests, then the bf16 sweep on hyena_4k
    step pytest_long1d_emb 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_long_conv1d_fused.py -k "configs or joint or largest or low_precision or dft_constants"
    step tune_long1d_emb 200 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_4k --dtypes bf16 --warps 8 --block-rows 32 --pairs 1,2 --products karatsuba,embedded --json "$OUT/tune_long1d_emb.json"
    step tune_long1d_joint 160 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_4k --dtypes bf16 --warps 8 --block-rows 32 --pairs 1,2 --products karatsuba,embedded --joint 1 --json "$OUT/tune_long1d_joint.json"
    [ "${DX_BENCH:-1}" = 1 ] && step bench_long_bf16 150 python -m lkconv bench --op long_conv1d --dtypes bf16 --out "$OUT/long1d_bf16"
    ;;
DY)  # after DX: embedded products at 16- and 64-row blocks (hyena_4k), at four pairs on hyena_1k, and in fp32
    # (split-bf16 products, where embedded needs half of Karatsuba's tensor-core products) against torch.fft
    step tune_long1d_emb_bk 120 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_4k --dtypes bf16 --warps 8 --block-rows 16,64 --pairs 1 --products embedded --joint 0,1 --json "$OUT/tune_long1d_emb_bk.json"
    step tune_long1d_emb_1k 120 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_1k --dtypes bf16 --warps 8 --block-rows 32 --pairs 2,4 --products karatsuba,embedded --json "$OUT/tune_long1d_emb_1k.json"
    step tune_long1d_emb32 200 python benchmarks/tune_long1d.py --jobs 8 --shapes hyena_4k --dtypes fp32 --warps 8 --block-rows 32 --pairs 1 --products karatsuba,embedded --joint 0,1 --json "$OUT/tune_long1d_emb32.json"
    ;;
DZ)  # what bounds the fused long_conv1d forward (hyena_4k, bf16): Nsight Compute's throughputs, pipe use and stall
    # reasons for Karatsuba's and embedded products at one and two pairs
    NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
    NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats --section InstructionStats"
    for form in karatsuba:2 karatsuba:1 embedded:2 embedded:1; do
        [ -n "$NCU" ] && step "ncu_long1d_${form%%:*}_p${form##*:}" 90 "$NCU" --clock-control none --kernel-name regex:long_conv1d_fused --launch-skip 2 --launch-count 1 $NCU_SECTIONS python benchmarks/ncu_long1d.py --shape hyena_4k --products "${form%%:*}" --pairs "${form##*:}"
    done
    ;;
DW)  # DV cut to the default change's deciding checks (a short lease): its GPU tests and those of the capture-safe FFT
    # caches, then the default (st3: band row blocks transposed from 27 kernel rows) against noleft on the RepLKNet-31B
    # stages, alternating twice, with 4-row blocks with and without it on s2 and s3 (whole rows), and s2's fastest
    # measured tile (whole-row 4-row blocks of 64 images on 4 warps, prefetched: 136.3 against 153.7 us in DQ)
    step pytest_left 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "transposed or left or row_blocks_match"
    step tune_left_31b 130 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3 --dtypes bf16 --configs noleft:st3,st3,rb4:left:st3,rb4:noleft:st3,bm64:rb4:w4:st3:pf,noleft:st3,st3 --json "$OUT/tune_left_31b.json"
    step pytest_long1d 35 python -m pytest -q -p no:benchmark tests/ops/test_long_conv1d_fused.py -k "dft_constants or strided_input or graph_capture" tests/ops/test_depthwise2d_fft.py
    ;;
DV)  # after DU: the transposed product (16-bit only), the default of band row blocks from 27 kernel rows — its GPU tests,
    # then the default (st3) against noleft on every K >= 27 shape (slak_t.s1.long included) and unireplknet_t.s1,
    # alternating twice, with 4-row blocks with and without it beside them; lkconv verify of implicit_gemm and auto
    step pytest_left 90 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "left or transposed or row_block or plane_tiles"
    step tune_left_all 200 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes replknet_31b.s1,replknet_31b.s2,replknet_31b.s3,slak_t.s1.long,unireplknet_t.s1 --dtypes bf16 --configs noleft:st3,st3,rb4:left:st3,rb4:noleft:st3,bm64:rb4:w4:st3:pf,noleft:st3,st3 --json "$OUT/tune_left_all.json"
    step pytest_long1d 45 python -m pytest -q -p no:benchmark tests/ops/test_long_conv1d_fused.py -k "dft_constants or strided_input or graph_capture" tests/ops/test_depthwise2d_fft.py
    step verify_igemm ${VERIFY_S:-120} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DU)  # after DT: the transposed product with plain gathers (2-byte loads, kept in registers by a select) against the
    # default plane tiles on unireplknet_t.s3 and band row blocks on unireplknet_t.s1 / replknet_31b.s1; its GPU tests
    step pytest_left 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "left or row_blocks_match"
    step tune_canvas_left 100 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s3 --dtypes bf16 --configs plane:st3,plane:canvas:left:st3,plane:canvas:left:w8:st3,plane:canvas:left:bn128:w8:st3,plane:canvas:left:st4,plane:canvas:left:bn32:st3,plane:canvas:left:bn128:st3,plane:st3 --json "$OUT/tune_canvas_left.json"
    step tune_rows_left 100 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes unireplknet_t.s1,replknet_31b.s1 --dtypes bf16 --configs st3,rb4:left:st3,bm64:rb4:w4:left:st3,rb8:left:st3,rb4:left:st4,rb2:left:st3 --json "$OUT/tune_rows_left.json"
    [ "${DU_VERIFY:-1}" = 1 ] && step verify_igemm ${VERIFY_S:-120} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
DQ)  # after DP: the next step's Toeplitz tiles gathered before each product (prefetch), 64-input plane steps
    step pytest_forms 100 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "plane or row_block or planned or inside"
    step tune_s3 130 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s3 --dtypes bf16 --configs plane:runs:st3,plane:runs:canvas:bn64:w8:st3,plane:runs:canvas:pf:bn64:w8:st3,plane:runs:canvas:pf:bn32:w4:st3,plane:runs:canvas:pf:bn64:w4:st3,plane:runs:canvas:pf:bn128:w8:st3,plane:runs:canvas:pf:pbk64:bn64:w8:st3,plane:runs:canvas:pf:pbk64:bn32:w4:st3,plane:runs:canvas:pbk64:bn64:w8:st3,plane:runs:canvas:pf:bn64:w8:st2 --json "$OUT/tune_s3.json"
    step tune_s1 150 python benchmarks/tune_igemm.py --graph --jobs 16 --shapes unireplknet_t.s1 --dtypes bf16 --configs bm64:rb4:w4:st3,bm64:rb4:w4:st3:pf,bm128:rb4:w8:st3:pf,bm64:rb8:w8:st3:pf,bm64:rb2:w4:st3:pf,bm32:rb8:w4:st3:pf,bm64:rb4:w4:st3:kr2,bm64:rb4:w4:st3:kr2:pf,bm128:rb4:w8:st3:kr2:pf,bm64:rb8:w8:st3:kr2:pf,bm64:rb4:w8:st3:kr4:pf,bm64:rb4:w8:st3:kr2:pf --json "$OUT/tune_s1.json"
    step tune_band 150 python benchmarks/tune_igemm.py --graph --no-gradients --jobs 16 --shapes replknet_31b.s2,replknet_31b.s1,slak_t.s1.wide --dtypes bf16 --configs st3,bm64:rb4:w4:st3:pf,bm128:rb4:w8:st3:pf,bm64:rb4:w4:st3:kr2:pf --json "$OUT/tune_band.json"
    ;;
DO)  # whole-plane tiles by default on unireplknet_t.s3 (bf16): the GPU tests of the default, the default against noplane
    # and against dense planes read as contiguous runs (IgemmConfig.plane_runs, 8-byte asynchronous copies)
    step pytest_plane 45 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_igemm.py -k "plane or planned or default_row_block"
    step tune_default 90 python benchmarks/tune_igemm.py --jobs 16 --shapes unireplknet_t.s3,replknet_31b.s3 --dtypes bf16 --configs st3,noplane:st3,plane:runs:st3,plane:runs:w8:st3,plane:runs:bn64:st3,plane:runs:st4 --json "$OUT/tune_default.json"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-DO step bench_bf16 150 python -m lkconv bench --jobs 16 --dtypes bf16 --layouts nchw,nhwc --shapes "unireplknet_t.s3,replknet_31b.s3" --out "$OUT/bench_bf16"
    step verify_igemm ${VERIFY_S:-150} python -m lkconv verify --quick --jobs 16 --ops depthwise2d --algorithms implicit_gemm,auto
    ;;
CK)  # lkconv bench under "auto" with side streams, one shape per step (a fresh autotune cache compiles every algorithm)
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CK step bench_slak_long 280 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes slak_t.s1.long --out "$OUT/slak_long"
    LKCONV_CACHE_DIR=/tmp/lkconv-cache-CK step bench_slak_wide 280 python -m lkconv bench --jobs 16 --dtypes fp32 --layouts nchw --shapes slak_t.s1.wide --out "$OUT/slak_wide"
    ;;
CI)
    step tune_split_nhwc 420 python benchmarks/tune_direct.py --split --directions wgrad --jobs 16 --configs fp32:nhwc --shapes "van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --nhwc-shapes "van_b0.lka_dil,cfsr.convmod,puyun.lka_latlon,convnext_t.s1,yolov13_n.dsconv,downsample.s2" --out "$OUT/tune_split_nhwc.json"
    ;;
BB)
    step tune_nhwc 200 python benchmarks/tune_direct.py --wide --directions fwd,dgrad --jobs 16 --configs fp32:nhwc --shapes unireplknet_t.s1 --nhwc-shapes unireplknet_t.s1 --out "$OUT/tune_nhwc.json"
    step tune_bf16 120 python benchmarks/tune_direct.py --wide --directions fwd --jobs 16 --configs bf16:nchw --shapes replknet_31b.s3 --nhwc-shapes replknet_31b.s3 --out "$OUT/tune_bf16.json"
    ;;
H)
    step bench_nhwc_bf16 290 python -m lkconv bench --jobs 15 --dtypes bf16 --layouts nhwc --out "$OUT/nhwc_bf16"
    step host_nchw 50 python benchmarks/host_profile.py --shape convnext_t.s1 --layout nchw
    step host_nhwc 50 python benchmarks/host_profile.py --shape convnext_t.s1 --layout nhwc
    step profile_step 100 python benchmarks/profile_step.py --shapes convnext_t.s1,unireplknet_t.s3 --dtypes fp32 --layouts nchw,nhwc
    ;;
I)
    step verify_fft 150 python -m lkconv verify --quick --jobs 15 --algorithms fft,auto
    step pytest_fft 60 python -m pytest -q -n 8 -p no:benchmark tests/ops/test_depthwise2d_fft.py
    step bench_nhwc_subset 200 python -m lkconv bench --jobs 15 --dtypes fp32,bf16 --layouts nhwc --shapes "replknet_31b.s1,replknet_31b.s2,slak_t.s1.long" --out "$OUT/nhwc_subset"
    ;;
esac
if [ "${1:-A}" != A ] && [ "${1:-A}" != B ]; then  # at most 8 files come back: pack everything into one archive
    tar czf "/tmp/$1.tgz" -C "$OUT" . && rm -rf "${OUT:?}"/* && mv "/tmp/$1.tgz" "$OUT/"
fi
