"""Optional cross-check of Trident's gradient rules against PyTorch autograd (not needed by tests or CI).

  npm run build && /usr/bin/python3 bench/torch_crosscheck.py   (Debian python3-torch)

Runs dist/testing/torch-crosscheck.js, which prints each case's inputs, cotangent, ONNX Runtime
output and analytic gradients; recomputes them with torch and reports the relative differences.
"""
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def network_with_ties(x, w1, b1, w2, b2):
    pooled = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)
    return F.log_softmax(F.linear(torch.flatten(pooled, 1), w2, b2), dim=1)


def conv_stride2_pad1(x, w, bias):
    return F.conv2d(x, w, bias, stride=2, padding=1)


def conv_strides21_asymmetric_pads(x, w):
    # ONNX pads [top, left, bottom, right] = [0, 1, 1, 0]; F.pad takes (left, right, top, bottom).
    return F.conv2d(F.pad(x, (1, 0, 0, 1)), w, stride=(2, 1))


def maxpool3_leftover_ties(x):
    return F.max_pool2d(x, 3)


def elementwise_mix(a, p):
    softmax = torch.softmax(a * p, dim=0)
    smooth = F.softplus(a) / (torch.sqrt(p) + torch.exp(torch.tanh(a)))
    powered = torch.pow(p, torch.sigmoid(a))
    norm = torch.linalg.vector_norm(powered - torch.clamp(a, -0.5, 0.5), dim=1, keepdim=True)
    return softmax * smooth + norm


def as_tensor(t):
    return torch.tensor(t["data"], dtype=torch.float32).reshape(t["dims"])


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-3)).item()


def main():
    out = subprocess.run(["node", "dist/testing/torch-crosscheck.js"], cwd=ROOT, check=True, capture_output=True, text=True)
    cases = json.loads(out.stdout)
    worst = 0.0
    for name, case in cases.items():
        inputs = {k: as_tensor(v).requires_grad_() for k, v in case["inputs"].items()}
        y = globals()[name](**inputs)
        (y * as_tensor(case["cotangent"])).sum().backward()
        errors = {"output": relative(as_tensor(case["output"]), y.detach())}
        for k, g in case["grads"].items():
            errors[k] = relative(as_tensor(g), inputs[k].grad)
        worst = max(worst, *errors.values())
        print(f"{name:34s} " + "  ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    print(f"worst relative difference {worst:.1e} (torch {torch.__version__}); tolerance {TOLERANCE}")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
