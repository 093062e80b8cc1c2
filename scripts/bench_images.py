"""scripts/bench_images [--images 48] [--workers 2]

Thumbnails/s for a batch of real photographs (scikit-image's sample images: astronaut, coffee,
the cat Chelsea, a rocket launch, motorcycles, ...; the wheel is downloaded once from PyPI into
.aisle-data/bench-images, only its image files are read). Each image is validated (decoded
whole) and turned into the 4 thumbnails aisle makes (150/300/600/1200 px):

  serial   the same work in this process, one image after the other (the baseline)
  ray      one Ray task per image (actors/thumbnailer.py, as uploads do), reading and writing
           the originals and thumbnails through the local object store

Prints images/s and thumbnails/s for each, and ray/serial.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

WHEEL = "scikit-image==0.26.0"
CACHE = Path(".aisle-data/bench-images")


def real_images() -> list[tuple[str, bytes]]:
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = list(CACHE.glob("scikit_image-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                        str(CACHE), WHEEL], check=True)
        wheels = list(CACHE.glob("scikit_image-*.whl"))
    out = []
    with zipfile.ZipFile(wheels[0]) as z:
        for name in sorted(z.namelist()):
            if name.startswith("skimage/data/") and name.endswith((".png", ".jpg")):
                data = z.read(name)
                out.append((name.rsplit("/", 1)[1], data))
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_images", description=__doc__)
    p.add_argument("--images", type=int, default=48, help="images in the batch (repeats "
                   "the sample set, each copy made distinct)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="CPUs Ray may use for the tasks")
    a = p.parse_args()

    import asyncio

    import ray

    from actors.thumbnailer import make_thumbnails, render
    from adapters.media_store import LocalStore
    from domain.errors import ValidationFailed
    from domain.images import SIZES, ImageLimits, inspect, original_key

    limits = ImageLimits()
    accepted: list[tuple[str, bytes]] = []
    for name, data in real_images():
        try:
            facts = inspect(data, limits)
        except ValidationFailed:
            continue  # e.g. tiny masks in the sample set
        if min(facts.width, facts.height) >= 200:
            accepted.append((name, data))
    batch = [(f"{i}-{accepted[i % len(accepted)][0]}",
              accepted[i % len(accepted)][1] + i.to_bytes(4, "big"))  # distinct bytes
             for i in range(a.images)]
    pixels = sum(inspect(d, limits).width * inspect(d, limits).height for _, d in batch)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(batch)} real images "
          f"({len(accepted)} distinct, {pixels / len(batch) / 1e6:.2f} Mpx on average); "
          f"date {time.strftime('%Y-%m-%d')}", flush=True)

    with tempfile.TemporaryDirectory(prefix="aisle-bench-images-") as tmp:
        store = LocalStore(Path(tmp))
        facts = []
        for _, data in batch:  # what an upload does before the thumbnails (not timed)
            f = inspect(data, limits)
            store.write(original_key(f.sha256, f.ext), data)
            facts.append(f)
        t0 = time.perf_counter()
        for f in facts:  # the same work as the tasks, one after the other in this process
            render(store.config, f.sha256, f.ext, SIZES)
        serial = time.perf_counter() - t0
        ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        try:
            async def run() -> float:
                # steady state: the task workers started and warm (as in a running service)
                await asyncio.gather(*(make_thumbnails(store.config, f.sha256, f.ext)
                                       for f in facts[: 4 * a.workers]))
                t = time.perf_counter()
                done = await asyncio.gather(*(make_thumbnails(store.config, f.sha256, f.ext)
                                              for f in facts))
                assert all(len(d) == len(SIZES) for d in done)
                return time.perf_counter() - t
            parallel = asyncio.run(run())
        finally:
            ray.shutdown()
        written = len(list(Path(tmp).rglob("*.jpg")))
    assert written >= len(batch) * len(SIZES)
    print("\n| path | images | seconds | images/s | thumbnails/s | vs serial |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, secs in (("serial (one process)", serial), (f"ray tasks ({a.workers} CPUs)",
                                                          parallel)):
        print(f"| {name} | {len(batch)} | {secs:.2f} | {len(batch) / secs:.1f} | "
              f"{len(batch) * len(SIZES) / secs:.1f} | {serial / secs:.2f}x |")
    print("\nboth read each original from the store and write its 4 JPEGs back, as an upload "
          "does; the tasks' workers are warm (started before timing), as in a running service")
    return 0


if __name__ == "__main__":
    sys.exit(main())
