"""Tiny but valid attachment bodies, deterministic from a number: PNG, PDF and plain text."""

from __future__ import annotations

import struct
import zlib

CONTENT_TYPES = {"png": "image/png", "pdf": "application/pdf", "txt": "text/plain"}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(n: int, size: int = 8) -> bytes:
    """An 8x8 RGB image whose colours come from `n`."""
    r, g, b = (n * 37) % 256, (n * 91) % 256, (n * 53) % 256
    # each row: filter byte + size pixels of 3 bytes
    rows = b"".join(b"\x00" + b"".join(bytes(((r + x * 16) % 256, (g + y * 16) % 256, b)) for x in range(size))
                    for y in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows, 9))
            + _png_chunk(b"IEND", b""))


def pdf(n: int, title: str = "Report") -> bytes:
    """A one-page PDF with a line of text, with a correct cross-reference table."""
    safe = "".join(ch for ch in title if 32 <= ord(ch) < 127 and ch not in "()\\")
    stream = f"BT /F1 12 Tf 72 720 Td ({safe} #{n}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
         b"/Resources << /Font << /F1 5 0 R >> >> >>"),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def text(n: int, title: str = "notes") -> bytes:
    return (f"{title}\nReading #{n}: {(n * 7919) % 1000} units\nRecorded by field crew.\n").encode()


def body(ext: str, n: int, title: str) -> bytes:
    if ext == "png":
        return png(n)
    if ext == "pdf":
        return pdf(n, title)
    return text(n, title)


LARGE_SIZE = 25 * 1024 * 1024 + 4096  # over the destination's 25 MB limit


def large_pdf_chunks(n: int, size: int = LARGE_SIZE):
    """A body over 25 MB, yielded in chunks: a PDF header, then a comment block of padding."""
    head = pdf(n, "Scanned drawings")
    yield head
    left = size - len(head)
    block = b"%" + b"0" * 1022 + b"\n"
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece
