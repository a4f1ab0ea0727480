"""What the tests and the benchmarks share: real servers (GStreamer RTSP, SeaweedFS S3), generated
media and stored recordings, `vigil run` as a subprocess, the API under test, and a fake clock.
Imports vigil's packages; nothing of vigil imports it."""
