#!/usr/bin/env python3
"""End-to-end test of the evidence browser: a Fashion-MNIST run of the bundled model written by the
real `bagnet report --html`, checked in headless Chromium by site_test.py, plus the size budget
(docs/evidence-browser.md): at most 40 KB per sample beyond the raw maps.

usage: site_e2e.py --bagnet BIN --fashion-mnist DIR --work DIR [--samples N] [--threads T]
"""
import argparse
import gzip
import os
import shutil
import struct
import subprocess
import sys


def write_subset(src_dir, dst_dir, n):
    """The first n test images and labels as uncompressed IDX files (a labelled dataset)."""
    with gzip.open(os.path.join(src_dir, 't10k-images-idx3-ubyte.gz')) as f:
        magic, count, rows, cols = struct.unpack('>IIII', f.read(16))
        pixels = f.read(n * rows * cols)
    with gzip.open(os.path.join(src_dir, 't10k-labels-idx1-ubyte.gz')) as f:
        f.read(8)
        labels = f.read(n)
    with open(os.path.join(dst_dir, 'subset-images-idx3-ubyte'), 'wb') as f:
        f.write(struct.pack('>IIII', magic, n, rows, cols) + pixels)
    with open(os.path.join(dst_dir, 'subset-labels-idx1-ubyte'), 'wb') as f:
        f.write(struct.pack('>II', 2049, n) + labels)
    return os.path.join(dst_dir, 'subset-images-idx3-ubyte')


def folder_bytes(path, skip=()):
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bagnet', required=True)
    ap.add_argument('--fashion-mnist', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--samples', type=int, default=300)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = write_subset(args.fashion_mnist, args.work, args.samples)
    out = os.path.join(args.work, 'report')
    cmd = [args.bagnet, 'report', data, '-o', out, '--html', '--threads', str(args.threads)]
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)

    raw = os.path.join(out, 'maps')
    per_sample = folder_bytes(out, skip={raw}) / args.samples
    print(f'site size: {per_sample / 1024:.1f} KB per sample beyond the raw maps')
    if per_sample > 40 * 1024:
        print('FAIL: more than 40 KB per sample')
        return 1

    here = os.path.dirname(os.path.abspath(__file__))
    shots = os.path.join(args.work, 'screenshots')
    return subprocess.run([sys.executable, os.path.join(here, 'site_test.py'), out, '--screenshots', shots]).returncode


if __name__ == '__main__':
    sys.exit(main())
