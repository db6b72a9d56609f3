"""A real PNG for the fake's mini-program codes: a QR code of the scene, drawn without Pillow.

A mini-program code is round and only WeChat can read it; a square QR code carrying the same
`scene` is the closest thing a fake can honestly draw, and any QR reader can check it.
"""

from __future__ import annotations

import struct
import zlib

import qrcode

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BORDER_MODULES = 4


def qr_png(text: str, width: int = 430) -> bytes:
    """A greyscale PNG about `width` pixels wide (WeChat's `width`, 280..1280)."""
    code = qrcode.QRCode(border=BORDER_MODULES, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    scale = max(1, width // len(matrix))
    rows = []
    for modules in matrix:
        line = b"".join((b"\x00" if dark else b"\xff") * scale for dark in modules)
        rows.extend([b"\x00" + line] * scale)  # filter type 0 before every scanline
    size = len(matrix) * scale
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)
