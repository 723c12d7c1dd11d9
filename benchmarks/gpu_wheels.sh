#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with what the GPU machine's image lacks for benchmarks/gpu_check.sh: diffusers, datasets,
# faker and the small packages datasets needs there (dill, multiprocess, importlib_metadata), as wheels for its
# Python 3.12, at the versions installed here. Run it here, before the device call that carries .whl.
#
#   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(diffusers datasets faker dill multiprocess importlib_metadata)
pins=()
for name in "${packages[@]}"; do
  version=$(python3 -c "from importlib.metadata import version; print(version('$name'))" 2>/dev/null) \
    || { echo "gpu_wheels.sh: $name is not installed here; pip install -e '.[test]' first" >&2; exit 2; }
  pins+=("$name==$version")
done
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "${pins[@]}"
ls .whl
du -sh .whl
