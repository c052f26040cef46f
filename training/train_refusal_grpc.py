#!/usr/bin/env python3
"""Time TrainModel's refusal of a catalog far over training.max_codes, over gRPC.

The script makes a data directory holding a catalog of the shipped model's codes plus
100 000 more (100 030 codes, 8.8 MB) and a small visits.csv, starts `ramtid serve` on a free
loopback port with that data directory and a copy of models/, and calls TrainModel with
only the server's reflection (no .proto, no stubs). Each run is timed from the call to the
status that ends the stream; the status code and message are printed, and the message
must carry the numbers (`catalog has 100 030 codes; the limit is 2 000
(training.max_codes)`).

    pip install grpcio grpcio-reflection
    cargo build --release --bin ramtid
    python3 training/train_refusal_grpc.py --server target/release/ramtid --runs 10

Exit status: 0 when every run was refused with INVALID_ARGUMENT and the numbers, 1 when
one was not, 2 on bad arguments.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reflect_client import ROOT, Reflected, start_server, wait_ready  # noqa: E402

EXTRA_CODES = 100_000


def write_inputs(data, shipped_catalog):
    data.mkdir(parents=True, exist_ok=True)
    text = shipped_catalog.read_text()
    extra = "".join(
        f'\n[[insats]]\ncode = "EXTRA{i}"\ncategory = "service"\nschablon_min = 10\n'
        for i in range(EXTRA_CODES)
    )
    (data / "big.toml").write_text(text + extra)
    codes = text.count("[[insats]]") + EXTRA_CODES
    (data / "visits.csv").write_text(
        "visit_id,recipient_id,unit_id,start,duration_min,staff,tasks\n"
        "v1,r1,team-a,2025-03-03T07:40:00,14,1,SHOWER\n"
    )
    return codes


def grouped(n):
    return f"{n:,}".replace(",", " ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, help="the ramtid binary to start")
    ap.add_argument("--models", default=str(ROOT / "models"), help="models root to copy")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    if a.runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2

    import grpc

    work = Path(tempfile.mkdtemp(prefix="ramtid-refusal-"))
    proc = None
    try:
        models = work / "models"
        shutil.copytree(a.models, models)
        shipped = sorted(models.glob("*/*/catalog.toml"))[0]
        data = work / "data"
        codes = write_inputs(data, shipped)
        size_mb = (data / "big.toml").stat().st_size / 1e6
        print(f"catalog: {grouped(codes)} codes, {size_mb:.1f} MB; data dir {data}")
        os.environ["RAMTID__DATA__DIR"] = str(data)
        proc, addr = start_server(a.server, models)
        channel = grpc.insecure_channel(addr)
        r = Reflected(grpc, channel)
        wait_ready(grpc, r, 30)
        m = r.pool.FindServiceByName("ramtid.v1.ModelService").FindMethodByName("TrainModel")
        request = r.message(m.input_type.full_name)
        progress = r.message(m.output_type.full_name)
        call = channel.unary_stream(
            "/ramtid.v1.ModelService/TrainModel",
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=progress.FromString,
        )
        want = f"catalog has {grouped(codes)} codes; the limit is 2 000 (training.max_codes)"
        times, ok = [], True
        for i in range(a.runs):
            req = request(catalog_path="big.toml", visits_path="visits.csv", name="refused")
            t0 = time.perf_counter()
            events = 0
            try:
                for _ in call(req, timeout=60):
                    events += 1
                code, message = grpc.StatusCode.OK, "(the stream ended without an error)"
            except grpc.RpcError as e:
                code, message = e.code(), e.details()
            seconds = time.perf_counter() - t0
            times.append(seconds)
            good = code == grpc.StatusCode.INVALID_ARGUMENT and want in message
            ok &= good
            print(f"run {i + 1}: {seconds:.3f} s, {code.name}, {events} events: {message}")
        print(
            f"TrainModel refused in {min(times):.3f}–{max(times):.3f} s "
            f"(median {statistics.median(times):.3f} s) over {a.runs} runs"
        )
        if not ok:
            print(f"FAIL: not every run was INVALID_ARGUMENT with '{want}'", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
