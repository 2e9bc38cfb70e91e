#!/usr/bin/env bash
# Builds benchmarks/.venv-peers: our pinned stack (inherited from the interpreter that runs this script, via
# --system-site-packages) plus the peer CAM libraries compared in benchmarks/peers.py. xplique 2.0.2 pins
# tensorflow[and-cuda]<=2.20, which would pull ~3 GB of CUDA wheels, so it goes in without its dependencies and only
# what it imports is added (see DESIGN §9).
set -euo pipefail
cd "$(dirname "$0")"
python -m venv --system-site-packages .venv-peers
.venv-peers/bin/pip install -q --no-deps xplique==2.0.2 einops==0.8.1 tf-keras==2.21.0
.venv-peers/bin/pip install -q tensorflow-probability==0.25.0 "scikit-image<=0.25.2" matplotlib tf-keras-vis==0.8.7
.venv-peers/bin/python -c "import xplique, tf_keras_vis; print('peers ready:', xplique.__version__, tf_keras_vis.__version__)"
