"""The structure check's cost against hashing the same file (issue 34.5: "well under").

Writes a real-size densepose_rcnn_R_50_FPN_s1x checkpoint (detectron2's 335 names and
shapes, as densezoo ships them; random float32 values, 256 MB) and times, warm in the
page cache, best of 3: densezoo's one-pass md5+sha256 of the file, and the structure
check (tensor inventory read without unpickling, plus the comparison).

    python benchmarks/structure_check.py [DIR]
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from densezoo.content.structure import check_file, expected_for
from densezoo.hashing import ALGORITHMS, hash_file

MODEL = "densepose_rcnn_R_50_FPN_s1x"


def best(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    expected = expected_for(MODEL)
    rng = np.random.default_rng(0)
    path = folder / "model_final_162be9.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {n: rng.standard_normal(s, dtype=np.float32).astype(d)
                               for n, s, d in expected.tensors}, "__author__": "bench"},
                    f, protocol=4)
    size = path.stat().st_size
    assert check_file(path, expected).ok
    hashing = best(lambda: hash_file(path, ALGORITHMS))
    checking = best(lambda: check_file(path, expected))
    print(f"{size / 1e6:.0f} MB: md5+sha256 {hashing:.3f} s, structure check "
          f"{checking:.3f} s = {checking / hashing:.3f}x of hashing")
    path.unlink()


if __name__ == "__main__":
    main()
