"""What handing frames to the live channel costs the camera's thread: `LivePublisher.publish` for
each frame, with one subscriber (as an API process) draining the socket in another process.

Why: with `workers.watched_read_coalesce_s` at the unwatched pause the reader's cadence is the same
watched or not, and what a watched camera still costs its worker is this hand-off (docs/design/
live.md, "Keeping the read pause while watched"). CPU is the calling thread's own
(`time.thread_time`), frames published in bursts of five as the pausing reader yields them.

Usage: .venv/bin/python bench/live_publish_cost.py [--frames 2000] [--sizes 3000,10000]
Writes bench/results/live_publish_cost.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import save_result  # noqa: E402
from harness.vigilproc import wait_until  # noqa: E402
from ingest.live_publish import open_publisher  # noqa: E402

SUBSCRIBER = """
import sys
sys.path.insert(0, {root!r})
from storage.live_channel import connect
s = connect({spool!r}, "cost")
while s.recv(1 << 20):
    pass
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--sizes", default="3000,10000", help="packet sizes, bytes")
    args = ap.parse_args()
    spool = tempfile.mkdtemp(prefix="vigil-publish-cost-")
    cc = SimpleNamespace(name="h264", extradata=b"\0\0\0\1gSPS", width=1280, height=720)
    pub = open_publisher(spool, "cost", SimpleNamespace(codec_context=cc, time_base=Fraction(1, 90000)))  # type: ignore[arg-type]
    assert pub is not None
    sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER.format(root=str(ROOT), spool=spool)])
    rows = []
    try:
        wait_until(lambda: pub.active, 10, 0.01, "the subscriber to join")
        for size in (int(x) for x in args.sizes.split(",")):
            pkts = []
            for i in range(args.frames):
                p = av.Packet(b"x" * size)
                p.dts = p.pts = i * 3600
                pkts.append(p)
            t0 = time.thread_time()
            for i, p in enumerate(pkts):
                pub.publish(p, i)
                if i % 5 == 4:
                    time.sleep(0.002)  # a burst of five, then the reader's pause (shortened)
            per_frame = (time.thread_time() - t0) / len(pkts)
            rows.append({"size": size, "cpu_us_per_frame": per_frame * 1e6, "pct_of_core_at_25fps": per_frame * 25 * 100})
            print(f"{size} B: {per_frame * 1e6:.1f} µs of CPU per frame published; at 25 fps {per_frame * 2500:.3f} % of a core")
    finally:
        pub.close("done")
        sub.wait(10)
    print(f"wrote {save_result('live_publish_cost', {'frames': args.frames, 'rows': rows})}")


if __name__ == "__main__":
    main()
