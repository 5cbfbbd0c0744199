"""Read a QR code back from a PNG screenshot: enough of ISO/IEC 18004 to
check, independently of the page's encoder, that what a buyer sees on a
ticket scans as the ticket's code.

It handles what a clean screenshot needs: versions 1-10, any error
correction level and mask, numeric, alphanumeric and byte segments. It
corrects no errors; it recomputes each block's Reed-Solomon codewords from
the data it read and refuses the symbol if they differ from the ones drawn,
so a wrong module anywhere fails the read instead of giving a wrong answer.
Pure Python (zlib for the PNG), so the tests need nothing installed.
"""

from __future__ import annotations

import struct
import zlib

# ---------------------------------------------------------------- PNG -> grey pixels


def png_grey(data: bytes) -> list[list[int]]:
    """Rows of 0-255 grey values of an 8-bit, non-interlaced PNG (grey, RGB or RGBA)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0, "only 8-bit, non-interlaced PNGs"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[int]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours = min(channels, 3)  # alpha is ignored: screenshots are opaque
        rows.append([sum(line[x * channels : x * channels + colours]) // colours for x in range(width)])
        previous = line
    return rows


# ---------------------------------------------------------------- pixels -> modules


def modules_from_pixels(grey: list[list[int]]) -> list[list[bool]]:
    """The module grid (True = dark) of the one QR symbol in the picture."""
    dark = [[value < 128 for value in row] for row in grey]
    ys = [y for y, row in enumerate(dark) if any(row)]
    xs = [x for x in range(len(dark[0])) if any(row[x] for row in dark)]
    assert ys and xs, "no dark pixels"
    top, bottom, left, right = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    # The top-left finder's outer ring is 7 modules wide: its first row is one dark run.
    run = 0
    while left + run < right and dark[top][left + run]:
        run += 1
    module = run / 7
    count = round((right - left) / module)
    assert (count - 17) % 4 == 0 and count >= 21, f"{count} modules across is no QR size"
    module = (right - left) / count
    assert abs((bottom - top) / count - module) < 0.5, "not square"
    return [
        [dark[int(top + (r + 0.5) * module)][int(left + (c + 0.5) * module)] for c in range(count)]
        for r in range(count)
    ]


# ---------------------------------------------------------------- modules -> text

# Per version 1..10, per level L, M, Q, H (ISO/IEC 18004, table 9).
ECC_PER_BLOCK = {
    "L": [7, 10, 15, 20, 26, 18, 20, 24, 30, 18],
    "M": [10, 16, 26, 18, 24, 16, 18, 22, 22, 26],
    "Q": [13, 22, 18, 26, 18, 24, 18, 22, 20, 24],
    "H": [17, 28, 22, 16, 22, 28, 26, 26, 24, 28],
}
BLOCKS = {
    "L": [1, 1, 1, 1, 1, 2, 2, 2, 2, 4],
    "M": [1, 1, 1, 2, 2, 4, 4, 4, 5, 5],
    "Q": [1, 1, 2, 2, 4, 4, 6, 6, 8, 8],
    "H": [1, 1, 2, 4, 4, 4, 5, 6, 8, 8],
}
ALIGNMENT = {1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34],
             7: [6, 22, 38], 8: [6, 24, 42], 9: [6, 26, 46], 10: [6, 28, 50]}  # fmt: skip
LEVEL_OF_BITS = {1: "L", 0: "M", 3: "Q", 2: "H"}
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
MASKS = [
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
]


def _format_codeword(level_bits: int, mask: int) -> int:
    data = level_bits << 3 | mask
    rem = data << 10
    for bit in range(14, 9, -1):
        if rem >> bit & 1:
            rem ^= 0x537 << (bit - 10)
    return (data << 10 | rem) ^ 0x5412


def _read_format(grid: list[list[bool]]) -> tuple[str, int]:
    def at(x: int, y: int) -> int:
        return int(grid[y][x])

    # The copy around the top-left finder, bit 0 first (x = column, y = row).
    places = [(8, i) for i in range(6)] + [(8, 7), (8, 8), (7, 8)] + [(14 - i, 8) for i in range(9, 15)]
    read = sum(at(x, y) << i for i, (x, y) in enumerate(places))
    best = min(
        (bin(read ^ _format_codeword(bits, mask)).count("1"), bits, mask) for bits in range(4) for mask in range(8)
    )
    assert best[0] <= 3, "format information unreadable"
    return LEVEL_OF_BITS[best[1]], best[2]


def _function_modules(version: int) -> list[list[bool]]:
    size = 17 + 4 * version
    used = [[False] * size for _ in range(size)]

    def block(x0: int, y0: int, w: int, h: int) -> None:
        for y in range(max(0, y0), min(size, y0 + h)):
            for x in range(max(0, x0), min(size, x0 + w)):
                used[y][x] = True

    block(0, 0, 9, 9)  # finder, separator and format bits
    block(size - 8, 0, 8, 9)
    block(0, size - 8, 9, 8)  # with the dark module
    block(6, 0, 1, size)  # timing
    block(0, 6, size, 1)
    centres = ALIGNMENT[version]
    for cy in centres:
        for cx in centres:
            if (cx, cy) in ((6, 6), (6, centres[-1]), (centres[-1], 6)):
                continue
            block(cx - 2, cy - 2, 5, 5)
    if version >= 7:
        block(size - 11, 0, 3, 6)
        block(0, size - 11, 6, 3)
    return used


def _gf_mul(a: int, b: int) -> int:
    result = 0
    while b:
        if b & 1:
            result ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return result


def _rs_remainder(data: list[int], degree: int) -> list[int]:
    generator = [1]
    root = 1
    for _ in range(degree):  # product of (x - 2^i)
        generator = [
            (generator[i] if i < len(generator) else 0) ^ (_gf_mul(generator[i - 1], root) if i > 0 else 0)
            for i in range(len(generator) + 1)
        ]
        root = _gf_mul(root, 2)
    remainder = [0] * degree
    for byte in data:
        factor = byte ^ remainder[0]
        remainder = [*remainder[1:], 0]
        for i in range(degree):
            remainder[i] ^= _gf_mul(generator[i + 1], factor)
    return remainder


def decode_modules(grid: list[list[bool]]) -> dict:
    """`{"text", "version", "level", "mask"}` of a clean module grid."""
    size = len(grid)
    version = (size - 17) // 4
    assert 1 <= version <= 10, f"version {version} is beyond this reader"
    level, mask = _read_format(grid)
    used = _function_modules(version)

    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5  # the vertical timing column is skipped
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            y = size - 1 - vert if upward else vert
            for x in (right, right - 1):
                if not used[y][x]:
                    bits.append(int(grid[y][x] ^ MASKS[mask](x, y)))
        right -= 2
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]

    ecc_len = ECC_PER_BLOCK[level][version - 1]
    blocks = BLOCKS[level][version - 1]
    short_len = len(codewords) // blocks
    short_blocks = blocks - len(codewords) % blocks
    data_lens = [short_len - ecc_len + (0 if b < short_blocks else 1) for b in range(blocks)]
    data: list[list[int]] = [[] for _ in range(blocks)]
    ecc: list[list[int]] = [[] for _ in range(blocks)]
    pos = 0
    for i in range(max(data_lens)):
        for b in range(blocks):
            if i < data_lens[b]:
                data[b].append(codewords[pos])
                pos += 1
    for _ in range(ecc_len):
        for b in range(blocks):
            ecc[b].append(codewords[pos])
            pos += 1
    for b in range(blocks):
        assert _rs_remainder(data[b], ecc_len) == ecc[b], f"block {b}: error correction codewords do not match"

    stream = "".join(f"{byte:08b}" for block in data for byte in block)
    pos, text = 0, ""

    def take(n: int) -> int:
        nonlocal pos
        value = int(stream[pos : pos + n] or "0", 2)
        pos += n
        return value

    while pos + 4 <= len(stream):
        mode = take(4)
        if mode == 0:
            break
        if mode == 4:
            count = take(8 if version <= 9 else 16)
            text += bytes(take(8) for _ in range(count)).decode("utf-8")
        elif mode == 2:
            count = take(9 if version <= 9 else 11)
            for _ in range(count // 2):
                pair = take(11)
                text += ALPHANUMERIC[pair // 45] + ALPHANUMERIC[pair % 45]
            if count % 2:
                text += ALPHANUMERIC[take(6)]
        elif mode == 1:
            count = take(10 if version <= 9 else 12)
            while count >= 3:
                text += f"{take(10):03d}"
                count -= 3
            if count:
                text += f"{take(4 if count == 1 else 7):0{count}d}"
        else:
            raise AssertionError(f"segment mode {mode} is beyond this reader")
    return {"text": text, "version": version, "level": level, "mask": mask}


def read_qr_png(png: bytes) -> dict:
    """Decode the QR code in a PNG screenshot."""
    return decode_modules(modules_from_pixels(png_grey(png)))


def smallest_version(text: str, level: str = "M") -> int:
    """The version a byte-mode `text` needs at `level` (what an encoder that picks the smallest should use)."""
    bits = 4 + 8 + 8 * len(text.encode())
    for version in range(1, 10):
        raw = sum(not f for row in _function_modules(version) for f in row)
        capacity = raw // 8 - ECC_PER_BLOCK[level][version - 1] * BLOCKS[level][version - 1]
        if bits <= capacity * 8:
            return version
    raise ValueError("too long for versions 1-9")
