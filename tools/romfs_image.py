"""A ROMFS image (MicroPython 1.25+) of files and folders, for the tools that
measure the code "in flash": bench_mp.py and measure_boards.py mount one in
the unix port, where its .mpy files are imported in place, as they are from
a board's ROMFS partition. The writer is mpremote's (the format's reference
implementation): python3 -m pip install mpremote.
"""

import os


def build_romfs(root, names, out):
    """Write the image of root's files and folders `names` (their paths in it
    as under root) to out; returns out."""
    from mpremote.romfs import VfsRomWriter

    writer = VfsRomWriter()

    def add(folder, name):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            writer.opendir(name)
            for inner in sorted(os.listdir(path)):
                add(path, inner)
            writer.closedir()
        else:
            with open(path, "rb") as f:
                writer.mkfile(name, f.read())

    for name in names:
        add(root, name)
    with open(out, "wb") as f:
        f.write(writer.finalise())
    return out
