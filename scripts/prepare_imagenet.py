#!/usr/bin/env python3
"""Converts an ImageNet-style folder (one sub-folder per class, e.g. the validation set arranged by
class) into the HDF5 tensor format that the `hdf5_images` dataset reads:

    images: N×3×224×224 float32, resized (short side 256), centre-cropped to 224 and normalised
            with the ImageNet mean/std as torchvision's ResNet expects
    labels: N int64, the class index in sorted folder-name order (torchvision's ImageFolder order)

usage: /usr/bin/python3 scripts/prepare_imagenet.py IMAGE_FOLDER OUT.h5 [--limit N] [--seed S]
Needs Debian's python3-torchvision, python3-h5py and python3-pil.
"""
import argparse
import random

import h5py
import numpy as np
import torch
import torchvision
from torchvision import transforms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--limit", type=int, default=0, help="keep a seeded random subset of this many images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = torchvision.datasets.ImageFolder(args.folder, transform=tf)
    idx = list(range(len(ds)))
    if args.limit:
        random.Random(args.seed).shuffle(idx)
        idx = sorted(idx[: args.limit])
    with h5py.File(args.out, "w") as f:
        images = f.create_dataset("images", (len(idx), 3, 224, 224), dtype="f4")
        labels = f.create_dataset("labels", (len(idx),), dtype="i8")
        for k, i in enumerate(idx):
            x, y = ds[i]
            images[k] = x.numpy()
            labels[k] = y
        f.attrs["source"] = args.folder
        f.attrs["classes"] = np.array(ds.classes, dtype=h5py.string_dtype())
    print(f"wrote {len(idx)} images to {args.out}")


if __name__ == "__main__":
    main()
