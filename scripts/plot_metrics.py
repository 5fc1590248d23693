#!/usr/bin/env python3
"""Plots the JSON-lines metrics file that st-train writes (--metrics) to a PNG.

    python3 scripts/plot_metrics.py run/metrics.jsonl run/metrics.png

Training loss and validation bits per byte against the step on the left,
tokens per second on the right.  Uses matplotlib from Debian's packages
(python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path):
    train, valid = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not a JSON line: {e}")
            (valid if record.get("kind") == "eval" else train).append(record)
    if not train and not valid:
        sys.exit(f"{path}: no metrics in the file")
    return train, valid


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    train, valid = read_metrics(sys.argv[1])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        left.plot([r["step"] for r in train], [r["loss_bits"] for r in train], label="train", lw=0.8)
        right.plot([r["step"] for r in train], [r["tokens_per_s"] for r in train], lw=0.8)
    if valid:
        left.plot([r["step"] for r in valid], [r["bits"] for r in valid], "o-", label="valid")
    left.set_xlabel("step")
    left.set_ylabel("bits per byte")
    left.legend()
    left.grid(alpha=0.3)
    right.set_xlabel("step")
    right.set_ylabel("tokens / s")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
