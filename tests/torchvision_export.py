#!/usr/bin/env python3
"""Exports a torchvision ResNet with random weights (and random BatchNorm statistics), a random
input and torchvision's logits to safetensors, for the C++ test that compares hawq-bench's ResNet
against torchvision on the same weights. Runs with Debian's python3-torchvision.

usage: torchvision_export.py ARCH NUM_CLASSES OUT_DIR
"""
import json
import struct
import sys

import torch
import torchvision


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    arch, classes, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    # The state dict includes num_batches_tracked, which the C++ loader must accept.
    write_safetensors(f"{out}/model.safetensors", dict(model.state_dict()))
    write_safetensors(f"{out}/io.safetensors", {"input": x, "logits": logits})


if __name__ == "__main__":
    main()
