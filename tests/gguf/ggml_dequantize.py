"""Runs llama.cpp's own ggml dequantizers on blocks written by webtune's tests.

Usage: python3 ggml_dequantize.py <libggml-base shared library> <jobs.json>
jobs.json is a list of {"type": "Q4_K", "elements": 512, "input": path, "output": path}; each
output file receives the elements as little-endian f32, exactly as ggml's dequantize_row_* (or
the f16/bf16 row converters) of the library that node-llama-cpp's prebuilt llama.cpp runs
produce them. Standard library only (ctypes).
"""
import ctypes
import json
import sys

FUNCTIONS = {
    "F16": "ggml_fp16_to_fp32_row",
    "BF16": "ggml_bf16_to_fp32_row",
    "Q8_0": "dequantize_row_q8_0",
    "Q4_0": "dequantize_row_q4_0",
    "Q5_0": "dequantize_row_q5_0",
    "Q5_1": "dequantize_row_q5_1",
    "Q4_K": "dequantize_row_q4_K",
    "Q5_K": "dequantize_row_q5_K",
    "Q6_K": "dequantize_row_q6_K",
}


def main() -> None:
    lib = ctypes.CDLL(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        jobs = json.load(f)
    for job in jobs:
        fn = getattr(lib, FUNCTIONS[job["type"]])
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        with open(job["input"], "rb") as f:
            data = f.read()
        src = ctypes.create_string_buffer(data, len(data))
        out = (ctypes.c_float * job["elements"])()
        fn(src, out, job["elements"])
        with open(job["output"], "wb") as f:
            f.write(bytes(out))


if __name__ == "__main__":
    main()
