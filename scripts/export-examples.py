#!/usr/bin/env python3
"""Exports images of an IDX dataset as grey PNGs named NNNN_<class>.png (NNNN = index in the file).

    python3 scripts/export-examples.py IMAGES_IDX[.gz] CLASSES_TXT OUT_DIR INDEX...

Labels come from the *-labels-idx1-ubyte[.gz] file beside the images. Standard library only.
"""
import gzip
import struct
import sys
import zlib
from pathlib import Path


def read_idx(path):
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] != b"\0\0" or data[2] != 8:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * data[3], data[4:4 + 4 * data[3]])
    return dims, data[4 + 4 * data[3]:]


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_grey_png(path, width, height, pixels):
    rows = b"".join(b"\0" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) +
                           png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    images, classes, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    labels_path = images.replace("-images-idx3-ubyte", "-labels-idx1-ubyte")
    names = [line.strip() for line in Path(classes).read_text().splitlines() if line.strip()]
    (count, rows, cols), pixels = read_idx(images)
    _, labels = read_idx(labels_path)
    out.mkdir(parents=True, exist_ok=True)
    for index in map(int, sys.argv[4:]):
        plane = rows * cols
        name = out / f"{index:04d}_{names[labels[index]]}.png"
        write_grey_png(name, cols, rows, pixels[index * plane:(index + 1) * plane])
        print(name)


if __name__ == "__main__":
    main()
