"""The floor of vigil's design, for the benchmarks' tables: one process, one thread per camera, each
PyAV-demuxing its RTSP URL and remuxing the packets into a fragmented MP4 whose bytes are counted
and dropped — no segmenting, spool, catalog, health or upload.

Run by bench/common.measure_bare as a subprocess; prints `PACKETS <n> …` (video packets per camera)
when every stream has ended.

    /tmp/venv/bin/python bench/bare_remux.py rtsp://127.0.0.1:8554/c000 rtsp://…
"""

from __future__ import annotations

import sys
import threading

import av


class _Null:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def remux(url: str, counts: list[int], i: int) -> None:
    opts = {"rtsp_transport": "tcp", "timeout": "5000000", "analyzeduration": "1000000", "probesize": "500000"}
    with av.open(url, options=opts, timeout=(5.0, None)) as inp:  # reads: the socket timeout (as ingest/source.py)
        vs = inp.streams.video[0]
        sink = _Null()
        with av.open(sink, "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}) as out:
            ost = out.add_stream_from_template(vs)
            first = None
            for pkt in inp.demux(vs):
                if pkt.size == 0 and pkt.dts is None:
                    continue
                if pkt.dts is None:  # FFmpeg's RTSP demuxer: the first IDR has no timestamps
                    if first is None and pkt.is_keyframe:
                        first = pkt
                    continue
                if first is not None:
                    first.dts = pkt.dts - (pkt.duration or 3600)
                    first.pts = first.dts
                    first.stream = ost
                    out.mux(first)
                    counts[i] += 1
                    first = None
                pkt.stream = ost
                out.mux(pkt)
                counts[i] += 1


def main(urls: list[str]) -> int:
    counts = [0] * len(urls)
    threads = [threading.Thread(target=remux, args=(u, counts, i), daemon=True) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("PACKETS " + " ".join(map(str, counts)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
