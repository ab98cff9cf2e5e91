"""PyTorch eager timing of Trident's train step, for bench/gpu (never needed by the product).

  python3 bench/gpu/torch_step.py DEVICE SPEC.json BATCHES SECONDS
      DEVICE: cuda or cpu; BATCHES: comma-separated batch sizes. For each batch size prints one
      JSON line: the median milliseconds of an Adam step of the module bench/torch_reference.py
      defines, with the batch already on the device ("resident_ms") and copied there from pinned
      host memory every step as a data loader does ("from_host_ms").
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from torch_reference import Net, losses, random_batch  # noqa: E402


def timed(fn, device, seconds, warm_up=10):
    for _ in range(warm_up):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), len(times)


def main(device_name, spec_path, batches, seconds):
    device = torch.device(device_name)
    spec = json.load(open(spec_path))
    for batch in batches:
        torch.manual_seed(0)
        net = Net(spec).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        host = random_batch(spec, batch, torch.Generator().manual_seed(0))
        if device.type == "cuda":
            host = tuple(t.pin_memory() for t in host)
        resident = tuple(t.to(device) for t in host)
        weights = torch.ones(3, device=device)

        def step(data):
            opt.zero_grad(set_to_none=True)
            loss, _ = losses(net, *data, weights)
            loss.backward()
            opt.step()

        resident_ms, n1 = timed(lambda: step(resident), device, seconds)
        from_host_ms, n2 = timed(lambda: step(tuple(t.to(device, non_blocking=True) for t in host)), device, seconds)
        print(json.dumps({
            "spec": spec["name"], "batch": batch, "resident_ms": resident_ms, "from_host_ms": from_host_ms, "steps": n1 + n2,
            "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3].split(",")], float(sys.argv[4]))
