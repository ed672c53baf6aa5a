"""HDF5 superblock v2/v3 consistency flags: read them, and clear them the way ``h5clear -s`` does.

A hard-killed SWMR writer leaves the "open for (SWMR) write" flag set in the superblock; libhdf5
then refuses a normal open. h5py has no call for clearing it (HDF5 offers it only through its
``h5clear`` tool), so this module patches the flag byte and the superblock's lookup3 checksum
itself (HDF5 File Format Specification, "Version 2 Superblock"). Only for a superblock at
offset 0, which is what ``libver="latest"`` writes.
"""
from __future__ import annotations

import os
import struct

from labspin.errors import UserError


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on a v2/v3 superblock."""
    m = 0xFFFFFFFF
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        x, y, z = struct.unpack_from("<III", data, i)
        a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
        a = (a - c) & m; a ^= _rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= _rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 4); b = (b + a) & m
        n -= 12
        i += 12
    if n == 0:
        return c
    x, y, z = struct.unpack_from("<III", data[i:] + bytes(12 - n))
    a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
    c ^= b; c = (c - _rot(b, 14)) & m
    a ^= c; a = (a - _rot(c, 11)) & m
    b ^= a; b = (b - _rot(a, 25)) & m
    c ^= b; c = (c - _rot(b, 16)) & m
    a ^= c; a = (a - _rot(c, 4)) & m
    b ^= a; b = (b - _rot(a, 14)) & m
    c ^= b; c = (c - _rot(b, 24)) & m
    return c


def clear_consistency_flags(path: str | os.PathLike) -> bool:
    """Clear the "open for (SWMR) write" flags a killed writer leaves (like ``h5clear -s``).

    Only for superblock v2/v3 at offset 0 (what ``libver="latest"`` writes). Returns whether
    anything was changed. Call it only when no process is writing the file.
    """
    with open(path, "r+b") as fh:
        head = bytearray(fh.read(64))
        if head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3):
            return False
        end = 12 + 4 * head[9]
        if struct.unpack_from("<I", head, end)[0] != _lookup3(bytes(head[:end])):
            raise UserError(f"{path}: HDF5 superblock checksum mismatch; file is damaged")
        if head[11] == 0:
            return False
        head[11] = 0
        struct.pack_into("<I", head, end, _lookup3(bytes(head[:end])))
        fh.seek(0)
        fh.write(head[:end + 4])
    return True


def superblock_flags(path: str | os.PathLike) -> int:
    """The file-consistency flags of a v2/v3 superblock (non-zero: open for write, or a killed
    writer's file); UserError when its checksum does not match (damaged)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    if len(head) < 12 or head[8] not in (2, 3):
        return 0                    # older superblock: no flags to honour; libhdf5 decides
    end = 12 + 4 * head[9]
    if len(head) < end + 4 or struct.unpack_from("<I", head, end)[0] != _lookup3(head[:end]):
        raise UserError(f"{path}: damaged HDF5 file (superblock checksum mismatch)")
    return head[11]
