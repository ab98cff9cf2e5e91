"""Optional PyTorch reference for Trident's training step (never needed by the product or CI).

  python3 bench/torch_reference.py serve SPEC.json BATCH THREADS
      prints {"ready": …} once the equivalent module, an Adam optimizer and a random batch exist, then
      answers each stdin line "step N" or "forward N" with {"ms": [N timings]}, until "quit"; the
      caller alternates these rounds with its own so that both are timed under the same conditions.
  python3 bench/torch_reference.py check CHECKPOINT.safetensors BATCH.safetensors OUT.safetensors LR [LABEL_SMOOTHING]
      loads the checkpoint's parameters and buffers into the equivalent module (load_state_dict,
      strict: every name and shape must match), takes one Adam step in training mode on the given
      batch and writes loss, task losses, the module's state_dict after the step (parameters and
      BatchNorm buffers) and Adam's state (<param>.exp_avg, <param>.exp_avg_sq) so the caller can
      compare them with train_step.onnx.
  python3 bench/torch_reference.py taskgrads CHECKPOINT.safetensors BATCH.safetensors OUT.safetensors
      per-task gradients with the batch's task_weights λ and combination weights α: the Gram
      matrices of ∇(λ_t·L_t) over the shared representation and over the shared parameters, and
      the update's gradient for every parameter (Σ_t α_t·∇(λ_t·L_t) for shared ones, ∇(λ_t·L_t) for
      task t's head), to compare with the per-task gradients of train_step.onnx.
"""
import json
import struct
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

BOX_BETA = 0.05


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        dtype = {"F32": np.float32, "I64": np.int64}[e["dtype"]]
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(raw[base + b : base + end], dtype=dtype).reshape(e["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        integer = np.asarray(tensors[name]).dtype == np.int64
        a = np.array(tensors[name], dtype=np.int64 if integer else np.float32, order="C")  # keeps 0-d shapes
        header[name] = {"dtype": "I64" if integer else "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (names conv1, bn1, conv2, bn2, downsample); without BatchNorm the convs carry biases."""

    def __init__(self, c, out, stride, batch_norm):
        super().__init__()
        norm = (lambda n: nn.BatchNorm2d(n)) if batch_norm else (lambda n: nn.Identity())
        self.conv1 = nn.Conv2d(c, out, 3, stride, 1, bias=not batch_norm)
        self.bn1 = norm(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=not batch_norm)
        self.bn2 = norm(out)
        self.downsample = None
        if stride != 1 or c != out:
            layers = [nn.Conv2d(c, out, 1, stride, 0, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            self.downsample = nn.Sequential(*layers)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Net(nn.Module):
    """The module whose state_dict names and layouts Trident's checkpoints use."""

    def __init__(self, spec):
        super().__init__()
        layers, c = [], spec["input"]["channels"]
        h, w = spec["input"]["height"], spec["input"]["width"]
        for b in spec["trunk"]:
            kind = b.get("type", "conv")
            if kind == "globalAvgPool":
                layers.append(nn.AdaptiveAvgPool2d(1))
                h, w = min(h, 1), min(w, 1)
                continue
            if kind == "residual":
                stride, bn = b.get("stride", 1), b.get("batchNorm", True)
                layers.append(BasicBlock(c, b["outChannels"], stride, bn))
                h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
                c = b["outChannels"]
                continue
            bn = b.get("batchNorm", False)
            layers.append(nn.Conv2d(c, b["outChannels"], b["kernel"], b.get("stride", 1), b.get("padding", 0), bias=not bn))
            h = (h + 2 * b.get("padding", 0) - b["kernel"]) // b.get("stride", 1) + 1
            w = (w + 2 * b.get("padding", 0) - b["kernel"]) // b.get("stride", 1) + 1
            if bn:
                layers.append(nn.BatchNorm2d(b["outChannels"]))
            if b.get("relu", True):
                layers.append(nn.ReLU())
            if b.get("pool"):
                layers.append(nn.MaxPool2d(b["pool"]))
                h, w = h // b["pool"], w // b["pool"]
            c = b["outChannels"]
        self.trunk = nn.Sequential(*layers)
        shared, width = [nn.Flatten()], c * h * w
        for units in spec["shared"]:
            shared += [nn.Linear(width, units), nn.ReLU()]
            width = units
        self.shared = nn.Sequential(*shared)
        k = len(spec["heads"]["classification"]["labels"])
        self.heads = nn.ModuleDict({"cls": nn.Linear(width, k), "det": nn.Linear(width, 1), "box": nn.Linear(width, 4)})

    def forward(self, x):
        z = self.shared(self.trunk(x))
        return self.heads["cls"](z), self.heads["det"](z), self.heads["box"](z)


def losses(net, image, label, objectness, box, mask, weights, label_smoothing=0.0):
    logits, det, box_logits = net(image)
    count = mask.sum().clamp(min=1)
    cls = (F.cross_entropy(logits, label, reduction="none", label_smoothing=label_smoothing) * mask).sum() / count
    det_loss = F.binary_cross_entropy_with_logits(det.reshape(-1), objectness)
    s = torch.sigmoid(box_logits)
    pred = torch.cat([s[:, :2] - s[:, 2:] / 2, s[:, :2] + s[:, 2:] / 2], dim=1)
    per = F.smooth_l1_loss(pred, box, beta=BOX_BETA, reduction="none").mean(dim=1)
    box_loss = (per * mask).sum() / count
    task = torch.stack([cls, det_loss, box_loss])
    return (task * weights).sum(), task


def random_batch(spec, n, gen):
    c, h, w = spec["input"]["channels"], spec["input"]["height"], spec["input"]["width"]
    k = len(spec["heads"]["classification"]["labels"])
    mask = (torch.rand(n, generator=gen) < 0.8).float()
    lo = torch.rand(n, 2, generator=gen) * 0.5
    return (
        torch.randn(n, c, h, w, generator=gen),
        torch.randint(0, k, (n,), generator=gen),
        mask.clone(),
        torch.cat([lo, lo + 0.3], dim=1),
        mask,
    )


def serve_timings(spec_path, batch, threads):
    torch.set_num_threads(threads)
    spec = json.load(open(spec_path))
    net = Net(spec)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    data = random_batch(spec, batch, gen)
    weights = torch.ones(3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = losses(net, *data, weights)
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            net(data[0])

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": threads}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        fn = {"step": step, "forward": forward}[words[0]]
        times = []
        for _ in range(int(words[1])):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"ms": times}), flush=True)


def check_step(ckpt_path, batch_path, out_path, lr, label_smoothing):
    params, meta = read_safetensors(ckpt_path)
    spec = json.loads(meta["spec"])
    net = Net(spec)
    state = {k: torch.from_numpy(v) for k, v in params.items() if not k.startswith("optim.")}
    net.load_state_dict(state, strict=True)
    net.train()
    b, _ = read_safetensors(batch_path)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss, task = losses(
        net,
        torch.from_numpy(b["image"]),
        torch.from_numpy(b["label"].astype(np.int64)),
        torch.from_numpy(b["objectness"]),
        torch.from_numpy(b["box"]),
        torch.from_numpy(b["mask"]),
        torch.from_numpy(b["task_weights"]),
        label_smoothing,
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    out = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    # Adam's state after one step holds the gradient: exp_avg = (1 - β1)·g, exp_avg_sq = (1 - β2)·g².
    for name, p in net.named_parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            out[f"{name}.{key}"] = opt.state[p][key].detach().numpy()
    out["loss"] = np.array([loss.item()], dtype=np.float32)
    out["task_losses"] = task.detach().numpy()
    write_safetensors(out_path, out)


def task_gradients(ckpt_path, batch_path, out_path):
    params, meta = read_safetensors(ckpt_path)
    net = Net(json.loads(meta["spec"]))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items() if not k.startswith("optim.")}, strict=True)
    net.train()
    b, _ = read_safetensors(batch_path)
    lam = torch.from_numpy(b["task_weights"])
    alpha = torch.from_numpy(b["alpha"])
    image = torch.from_numpy(b["image"])
    z = net.shared(net.trunk(image))
    heads = {"cls": net.heads["cls"](z), "det": net.heads["det"](z), "box": net.heads["box"](z)}

    class Fixed(nn.Module):
        def forward(self, _):
            return heads["cls"], heads["det"], heads["box"]

    _, task = losses(
        Fixed(),
        image,
        torch.from_numpy(b["label"].astype(np.int64)),
        torch.from_numpy(b["objectness"]),
        torch.from_numpy(b["box"]),
        torch.from_numpy(b["mask"]),
        torch.ones(3),
    )
    rep, par, per_task = [], [], []
    for t in range(3):
        g = torch.autograd.grad(lam[t] * task[t], [z] + list(net.parameters()), retain_graph=True, allow_unused=True)
        rep.append(g[0].reshape(-1))
        grads = dict(zip([n for n, _ in net.named_parameters()], g[1:]))
        per_task.append(grads)
        par.append(torch.cat([grads[n].reshape(-1) for n, p in net.named_parameters() if not n.startswith("heads.")]))
    out = {
        "gram_representation": torch.stack([torch.stack([a @ c for c in rep]) for a in rep]).detach().numpy(),
        "gram_parameters": torch.stack([torch.stack([a @ c for c in par]) for a in par]).detach().numpy(),
        "task_losses": task.detach().numpy(),
    }
    for n, p in net.named_parameters():
        if n.startswith("heads."):
            t = ["cls", "det", "box"].index(n.split(".")[1])
            out[f"{n}.grad"] = per_task[t][n].detach().numpy()
        else:
            out[f"{n}.grad"] = sum(alpha[t] * per_task[t][n] for t in range(3)).detach().numpy()
    write_safetensors(out_path, out)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve_timings(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check_step(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
    elif sys.argv[1] == "taskgrads":
        task_gradients(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
