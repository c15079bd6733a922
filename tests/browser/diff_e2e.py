#!/usr/bin/env python3
"""End-to-end test of the `bagnet diff --html` page: a small BagNet of larger q trained by the real
`bagnet train` on a Fashion-MNIST subset, diffed against the bundled model with class names that are
markup (they must appear as text), then checked in headless Chromium by diff_page_test.py.

usage: diff_e2e.py --bagnet BIN --bundled MODEL --fashion-mnist DIR --work DIR [--samples N] [--threads T]
"""
import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from site_e2e import write_subset  # noqa: E402

HOSTILE_NAMES = ['t-shirt <b>bold</b>', 'trouser', 'pullover & co', 'dress "x"', 'coat',
                 'sandal <img src=x onerror=alert(1)>', 'shirt', 'sneaker', 'bag', "ankle-boot '"]


def run(cmd):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bagnet', required=True)
    ap.add_argument('--bundled', required=True, help='the bundled model file (the --against model)')
    ap.add_argument('--fashion-mnist', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--samples', type=int, default=200)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = write_subset(args.fashion_mnist, args.work, args.samples)
    labels = os.path.join(args.work, 'names.txt')
    with open(labels, 'w') as f:
        f.write('\n'.join(HOSTILE_NAMES) + '\n')
    model = os.path.join(args.work, 'q17.pt')
    run([args.bagnet, 'train', data, '--arch',
         'blocks=1-1-1-1,kernel3=1-1-1-1,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=10',
         '--epochs', '2', '--batch-size', '32', '--seed', '1', '--threads', str(args.threads), '-o', model])
    out = os.path.join(args.work, 'diff')
    run([args.bagnet, 'diff', data, '--weights', model, '--against', args.bundled, '--labels', labels, '--figures', '30',
         '--threads', str(args.threads), '-o', out, '--html'])
    here = os.path.dirname(os.path.abspath(__file__))
    shots = os.path.join(args.work, 'screenshots')
    return subprocess.run([sys.executable, os.path.join(here, 'diff_page_test.py'), out, '--screenshots', shots]).returncode


if __name__ == '__main__':
    sys.exit(main())
