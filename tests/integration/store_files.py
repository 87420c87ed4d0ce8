"""Helpers over a stopped store's files, shared by the corruption and verification tests."""


def column_family(sst):
    """The column family an SST file belongs to, read from its properties block."""
    b = open(sst, "rb").read()
    i = b.find(b"column.family.id")
    j = b.find(b"name", i)
    return b[j + 4:b.find(b"\n", j)].decode(errors="replace")
