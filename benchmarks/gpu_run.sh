#!/usr/bin/env bash
# Everything a bare GPU machine needs, for a machine you have for a few minutes: the system's
# python3 (torch, torchvision, timm, numpy, pandas, scikit-learn, PyYAML, tqdm, Pillow), no make,
# no Jupyter, no network.
#
#   benchmarks/gpu_run.sh DATA_ARCHIVE OUTDIR [SECONDS]      (default 480 s)
#
# 1. unpacks DATA_ARCHIVE (torchvision's cifar-10-python.tar.gz, or a tarball of JPEG folders
#    train/<class>/*.jpg and test/<class>/*.jpg) into OUTDIR/data/cifar10/;
# 2. runs benchmarks/gpu_check.py within GPU_CHECK_SHARE percent of SECONDS (default 45) into
#    OUTDIR/gpu-check/ (its summary.md and throughput.csv are rewritten after every part);
# 3. with the time left, study 1's paper runs in the order strong_resnet18, seed_resnet18,
#    strong_vit, seed_vit_b16, ablation_vit_b16_no_preprocessing, each with the paper profile's
#    config unchanged, into OUTDIR/runs/<run>/ (a run cut by the clock is interrupted cleanly and
#    left incomplete);
# 4. packs OUTDIR/results.tar.gz: the check's files, the runs without weights or checkpoints
#    (*.pt), and this script's log. Copy OUTDIR/runs/* into outputs/paper/01_cifar10_vit_vs_resnet/runs/
#    and `make report PROFILE=paper` recognises the complete ones.
#
# Environment: PYTHON (default python3); GPU_RUN_DEVICE=cpu runs the same steps on a CPU (the
# check at a CPU's scale, the runs with --set device=cpu) to try the script on a machine
# without a GPU; GPU_CHECK_ARGS adds arguments to the check (e.g. --time-to-accuracy). Without
# the tensorboard package the runs log to their CSV files only (train.tensorboard=false).
set -uo pipefail

usage="usage: benchmarks/gpu_run.sh DATA_ARCHIVE OUTDIR [SECONDS]"
archive=${1:?$usage}
outdir=${2:?$usage}
seconds=${3:-480}
python=${PYTHON:-python3}
device=${GPU_RUN_DEVICE:-cuda}
share=${GPU_CHECK_SHARE:-45}
here=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)

fail() { echo "error: $*" >&2; exit 2; }
[[ -f $archive ]] || fail "no archive at $archive"
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || fail "SECONDS must be a positive whole number, got '$seconds'"
[[ $device == cuda || $device == cpu ]] || fail "GPU_RUN_DEVICE must be cuda or cpu, got '$device'"
command -v "$python" > /dev/null || fail "no $python on PATH (set PYTHON)"
"$python" -c "import torch, torchvision, timm, numpy, pandas, sklearn, yaml, tqdm, PIL" 2> /dev/null \
  || fail "$python lacks one of torch, torchvision, timm, numpy, pandas, scikit-learn, PyYAML, tqdm, Pillow"
if [[ $device == cuda ]]; then
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "CUDA is not available to $python (GPU_RUN_DEVICE=cpu runs the CPU form)"
fi
mkdir -p "$outdir" || fail "cannot create $outdir"
outdir=$(cd "$outdir" && pwd)
logfile=$outdir/gpu_run.log
exec > >(tee -a "$logfile") 2>&1
left() { echo $(( seconds - ($(date +%s) - start) )); }
say() { echo "[gpu_run $(date +%H:%M:%S), $(left) s left] $*"; }

# ---------------------------------------------------------------- 1. the data
data=$outdir/data
if [[ ! -e $data/cifar10/cifar-10-batches-py/test_batch && ! -d $data/cifar10/test ]]; then
  say "unpacking $archive"
  mkdir -p "$data/cifar10"
  tar -xzf "$archive" -C "$data/cifar10" || fail "cannot unpack $archive"
  # a JPEG tarball with one folder above train/ and test/: lift them up
  if [[ ! -d $data/cifar10/cifar-10-batches-py && ! -d $data/cifar10/test ]]; then
    inner=$(find "$data/cifar10" -mindepth 2 -maxdepth 2 -type d -name test -printf '%h\n' | head -1)
    [[ -n $inner && -d $inner/train ]] && mv "$inner/train" "$inner/test" "$data/cifar10/"
  fi
  [[ -d $data/cifar10/cifar-10-batches-py || -d $data/cifar10/test ]] \
    || fail "$archive holds neither cifar-10-batches-py/ nor train/ and test/ folders"
fi

# ---------------------------------------------------------------- 2. the check
check_budget=$(( seconds * share / 100 ))
say "GPU check on $device within $check_budget s"
# shellcheck disable=SC2086
PYTHONPATH=$here/lib "$python" "$here/benchmarks/gpu_check.py" --device "$device" --data-dir "$data" \
  --out "$outdir/gpu-check" --budget "$check_budget" ${GPU_CHECK_ARGS:-}
check_rc=$?
say "GPU check finished (exit $check_rc)"

# ---------------------------------------------------------------- 3. study 1's paper runs
params=$here/params/paper/01_cifar10_vit_vs_resnet.yaml
sets=()  # (both keys are outside a run's identity: the runs stay the paper profile's)
[[ $device == cpu ]] && sets+=(device=cpu)
"$python" -c "import tensorboard" 2> /dev/null || sets+=(train.tensorboard=false)
set_args=()
(( ${#sets[@]} )) && set_args=(--set "${sets[@]}")
for run in strong_resnet18 seed_resnet18 strong_vit seed_vit_b16 ablation_vit_b16_no_preprocessing; do
  if (( $(left) < 30 )); then
    say "no time left for $run and the runs after it"
    break
  fi
  say "paper run $run (stopped at $(( $(left) - 20 )) s)"
  # SIGINT: the run stops like Ctrl-C, keeping its finished epochs; 20 s are kept for packing
  PYTHONPATH=$here/lib timeout -s INT -k 15 $(( $(left) - 20 )) "$python" -m cnnvit -q study "$params" \
    --runs "$run" --out "$outdir" --data-dir "$data" "${set_args[@]}"
  say "$run: exit $?"
done

# ---------------------------------------------------------------- 4. the results, small
say "packing $outdir/results.tar.gz"
parts=(gpu-check gpu_run.log)
[[ -d $outdir/runs ]] && parts+=(runs)
tar -czf "$outdir/results.tar.gz" -C "$outdir" --exclude='*.pt' --exclude='.lock' --exclude='*.tmp' "${parts[@]}" \
  || fail "cannot write $outdir/results.tar.gz"
say "done: $(du -h "$outdir/results.tar.gz" | cut -f1) in $outdir/results.tar.gz (GPU check exit $check_rc)"
exit "$check_rc"
