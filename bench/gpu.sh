#!/usr/bin/env bash
# The GPU benchmark: the train stage's own code (through bench/recipes.py) under Keras on JAX, on a
# machine that has JAX and no TensorFlow and cannot reach the package registry, such as the H100
# this project is sometimes lent. Two steps:
#
#   bash bench/gpu.sh fetch        # here: .gpu/ gets the competition zip and the wheels that machine lacks
#   bash bench/gpu.sh run OUT      # there, with .gpu/ carried: the tables and the log land in OUT
#
# With the device tool: run(command="bash bench/gpu.sh run $OUT", carry=[".gpu"], timeout_s=590).
#
# `run` times augmentation's two samplers (bench/augmentation_speed.py), trains the gpu recipe (time to 99.5%
# and 99.7%), then the champion's 4 members side by side, each under its own time limit so that a short loan
# still reports the first tables.
set -euo pipefail
cd "$(dirname "$0")/.."

# What that machine lacks of the pipeline's training code, at requirements-common.txt's versions: Keras and its
# two small needs, pydantic for params.yaml, and DVCLive with the part of DVC that its Live opens.
WHEELS=(
  keras==3.15.1 namex==0.1.0 optree==0.20.0
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
  dvclive==3.49.1 dvc==3.67.1 dvc-data==3.18.3 dvc-http==2.32.0 dvc-objects==5.2.0 dvc-render==1.0.2
  dvc-studio-client==0.23.0 scmrepo==3.6.2 dulwich==1.2.21 sqltrie==0.11.3 pygtrie==2.6.2 diskcache==5.6.3
  dpath==2.2.0 atpublic==9.0.0 flufl.lock==9.2.0 zc.lockfile==4.0 orjson==3.13.0 pydot==4.0.1 funcy==2.1
  configobj==5.0.9 flatten-dict==0.5.0 ruamel.yaml==0.19.1 voluptuous==0.16.0 wcwidth==0.9.5
)

case "${1:-}" in
  fetch)
    mkdir -p .gpu/wheels
    cp ../shared/data/digit-recognizer.zip .gpu/
    # The lent machine's Python is 3.12; PYTHON_VERSION=3.11 fetches for this one, to rehearse.
    python3 -m pip download -q --no-deps --only-binary=:all: --dest .gpu/wheels \
      --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      "${WHEELS[@]}"
    du -sh .gpu
    ;;
  run)
    out=${2:?usage: bash bench/gpu.sh run OUT}
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .gpu/wheels/*.whl
    # JAX takes 75% of the GPU's memory per process unless told not to; the champion's members share it.
    export PYTHONPATH=$site KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
    nvidia-smi -L || true
    python3 -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__)'
    bench=(python3 bench/recipes.py --zip .gpu/digit-recognizer.zip --out "$out/results")
    { timeout 120 python3 bench/augmentation_speed.py || echo "augmentation: stopped (exit $?)"
      timeout "${GPU_RECIPE_SECONDS:-180}" "${bench[@]}" gpu --seeds 42 43 || echo "gpu recipe: stopped (exit $?)"
      timeout "${CHAMPION_SECONDS:-300}" "${bench[@]}" champion --seeds 42 43 44 45 --jobs 4 ||
        echo "champion: stopped (exit $?)"
    } 2>&1 | tee "$out/gpu.log"
    ;;
  *)
    sed -n 2,13p "$0"
    exit 2
    ;;
esac
