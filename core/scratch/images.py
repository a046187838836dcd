"""A folder of images as a CNN's (or MLP's) data: torchvision's ImageFolder layout, `root/<class>/<image>`.

    config.dataset = "folder:shapes"     # <workspace>/imports/shapes/circle/1.png, .../square/7.jpg, ...
    architecture["image_size"] = 32      # every image resized to 32 × 32, grey or RGB as the files are

The folder must lie inside the folders "Path on the server" may read (core.data.paths: `<workspace>/imports`
and TORCHLAB_DATA_DIRS), resolved before the check so a link leading out is refused like its target. Files are
decoded with Pillow; unreadable ones are skipped and counted, and caps on the number of images and on the
decoded values keep a huge folder from exhausting memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from core.training.config import ConfigError

PREFIX = "folder:"  # config.dataset = PREFIX + the folder's path
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")  # torchvision's
DEFAULT_SIZE = 32
SIZE_RANGE = (4, 512)
MAX_IMAGES = 20_000  # image files in one folder
MAX_VALUES = 2**26  # images × channels × size × size (256 MiB as float32)
MAX_SOURCE_PIXELS = 40_000_000  # one file's width × height before resizing; larger ones are skipped
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
FIELD = "dataset"
LAYOUT_HELP = ("one sub-folder per class, the images inside it (torchvision's ImageFolder layout), e.g. "
               "imports/shapes/circle/001.png, imports/shapes/square/001.png: the classes are the sub-folder names")


def is_image_folder(dataset: str) -> bool:
    return isinstance(dataset, str) and dataset.startswith(PREFIX)


@dataclass
class ImageData:
    pixels: object  # float32 array (images, channels, size, size), values in [0, 1]
    labels: object  # int64 array (images,)
    classes: list[str]
    skipped: dict[str, int] = field(default_factory=dict)  # why -> how many files were left out

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])


def folder_path(dataset: str, settings: Settings) -> Path:
    """The real path of the image folder `dataset` ("folder:<path>") names, inside the allowed folders."""
    from core.data.paths import allowed_dirs, resolve_inside

    text = dataset[len(PREFIX):].strip() if is_image_folder(dataset) else ""
    if not text:
        raise ConfigError(FIELD, f"type the path of an image folder inside {_roots(settings)} ({LAYOUT_HELP})")
    if "\x00" in text or len(text) > 4096:
        raise ConfigError(FIELD, "that is not a usable folder path")
    real, root = resolve_inside(text, allowed_dirs(settings))  # links resolved before the check, never after
    if root is None:
        raise ConfigError(FIELD, f"{text!r} is outside the folders the server may read ({_roots(settings)}); "
                          "copy the images into one of them")
    if not real.is_dir():
        raise ConfigError(FIELD, f"{text!r} {'is a file, not a folder' if real.exists() else 'does not exist'} "
                          f"in {_roots(settings)}")
    return real


def _roots(settings: Settings) -> str:
    from core.data.paths import allowed_dirs

    return ", ".join(str(r) for r in allowed_dirs(settings))


def image_size(arch: dict) -> int:
    v = arch.get("image_size")
    return DEFAULT_SIZE if v is None else v


def list_images(root: Path, settings: Settings) -> tuple[list[tuple[Path, int]], list[str], dict[str, int]]:
    """(every (image file, class index), the class names, skipped counts): classes are the sorted sub-folders."""
    from core.data.paths import allowed_dirs

    roots = allowed_dirs(settings)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    skipped = {"not image files": 0, "outside a class folder": 0, "links leading out of the folders": 0}
    skipped["outside a class folder"] = sum(1 for f in root.iterdir() if f.is_file() and not f.name.startswith("."))
    files: list[tuple[Path, int]] = []
    for i, name in enumerate(classes):
        for dirpath, dirnames, names in os.walk(root / name):  # links to folders are not followed
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for n in sorted(names):
                if n.startswith("."):
                    continue
                if not n.lower().endswith(EXTENSIONS):
                    skipped["not image files"] += 1
                    continue
                real = Path(os.path.realpath(Path(dirpath) / n))
                if not any(real.is_relative_to(r) for r in roots):
                    skipped["links leading out of the folders"] += 1
                    continue
                files.append((real, i))
                if len(files) > MAX_IMAGES:
                    raise ConfigError(FIELD, f"over {MAX_IMAGES:,} images in {root}: the cap is {MAX_IMAGES:,}; "
                                      "use a smaller folder (a sample per class)")
    return files, classes, skipped


def load_folder(dataset: str, settings: Settings, size: int = DEFAULT_SIZE) -> ImageData:
    """Decode every image of the folder, resized to size × size, grey (1 channel) when every file is grey,
    RGB (3) otherwise, scaled to [0, 1]. ConfigError when nothing usable is there or a cap is passed."""
    import numpy as np

    low, high = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        raise ConfigError("architecture.image_size", f"a whole number of pixels from {low} to {high}, got {size!r}")
    root = folder_path(dataset, settings)
    files, classes, skipped = list_images(root, settings)
    if not files:
        raise ConfigError(FIELD, f"no image files ({', '.join(EXTENSIONS)}) in {root}: expected {LAYOUT_HELP}")
    if (least := len(files) * size * size) > MAX_VALUES:
        raise ConfigError("architecture.image_size", f"{len(files):,} images × {size} × {size} = {least:,} values "
                          f"even in grey, over the cap of {MAX_VALUES:,}: lower the image size or use fewer images")
    pixels, kept, counts = decode_all([p for p, _ in files], size, f"of {len(files):,}")
    skipped |= counts
    skipped = {k: v for k, v in skipped.items() if v}
    if not kept:
        raise ConfigError(FIELD, f"none of the {len(files):,} image files in {root} could be read ({_said(skipped)})")
    labels = [files[i][1] for i in kept]
    y = np.asarray(labels, dtype=np.int64)
    present = sorted(set(labels))
    if len(present) < 2:
        only = classes[present[0]]
        raise ConfigError(FIELD, f"{root} has readable images of a single class ({only!r}): a classifier needs "
                          f"at least two sub-folders of images ({LAYOUT_HELP})")
    if len(present) < len(classes):  # a sub-folder without a readable image is not a class
        remap = {old: new for new, old in enumerate(present)}
        y = np.asarray([remap[v] for v in labels], dtype=np.int64)
        classes = [classes[i] for i in present]
    return ImageData(pixels, y, classes, skipped)


def decode_all(sources: list, size: int, of: str = "") -> tuple[object, list[int], dict[str, int]]:
    """Decode and resize every source (a file path, or a file-like object of encoded bytes): (pixels as float32
    (kept, channels, size, size) in [0, 1], the indices of the sources kept, skipped counts). Grey (1 channel)
    when every kept image is grey, RGB (3) otherwise. Caps on the values decoded raise ConfigError."""
    import numpy as np

    decoded, kept, values, unreadable, too_big = [], [], 0, 0, 0
    for i, source in enumerate(sources):
        img = _open(source, size)
        if img is None:
            unreadable += 1
            continue
        if img == "big":
            too_big += 1
            continue
        # resized at once (uint8): a folder of large photos never sits in memory at full size
        grey = img.mode in GREY_MODES
        decoded.append(np.asarray(img.convert("L" if grey else "RGB").resize((size, size))))
        img.close()
        kept.append(i)
        values += decoded[-1].size
        if values > MAX_VALUES:
            raise ConfigError("architecture.image_size", f"the images passed {MAX_VALUES:,} values (images × "
                              f"channels × {size} × {size}) after {len(decoded):,} {of}: lower the image size or "
                              "use fewer images")
    skipped = {"unreadable (corrupt or not an image)": unreadable, f"over {MAX_SOURCE_PIXELS:,} pixels": too_big}
    channels = 3 if any(a.ndim == 3 for a in decoded) else 1  # RGB as soon as one image has colour
    if (values := len(decoded) * channels * size * size) > MAX_VALUES:
        raise ConfigError("architecture.image_size", f"{len(decoded):,} images × {channels} × {size} × {size} = "
                          f"{values:,} values, over the cap of {MAX_VALUES:,}: lower the image size or use fewer "
                          "images")
    pixels = np.empty((len(decoded), channels, size, size), dtype=np.float32)
    for j, a in enumerate(decoded):
        pixels[j] = (a.transpose(2, 0, 1) if a.ndim == 3 else a[None]) / np.float32(255.0)
    return pixels, kept, {k: v for k, v in skipped.items() if v}


def _open(path, size: int):
    """The decoded image (first frame), "big" past the pixel cap, None when Pillow can't read it."""
    from PIL import Image

    try:
        img = Image.open(path)
        if img.width * img.height > MAX_SOURCE_PIXELS:
            img.close()
            return "big"
        img.draft(img.mode if img.mode in ("L", "RGB") else None, (size, size))  # JPEG: decode at a smaller scale
        img.load()
        return img
    except Exception:  # noqa: BLE001 - Pillow raises many kinds (OSError, SyntaxError, ValueError, bombs)
        return None


def _said(skipped: dict[str, int]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in skipped.items()) or "nothing skipped"


def skipped_note(skipped: dict[str, int]) -> str:
    """"3 unreadable (corrupt or not an image), 1 not image files skipped", or "" when nothing was."""
    return f"skipped: {_said(skipped)}" if skipped else ""


def samples(dataset: str, settings: Settings, per_class: int = 2, max_classes: int = 8, size: int = 64
            ) -> list[tuple[str, object]]:
    """A few images per class (label, uint8 array) for the form's preview: only those files are decoded."""
    import numpy as np

    root = folder_path(dataset, settings)
    files, classes, _ = list_images(root, settings)
    out, taken = [], {}
    for path, label in files:
        if label >= max_classes or taken.get(label, 0) >= per_class:
            continue
        img = _open(path, size)
        if img is None or img == "big":
            continue
        taken[label] = taken.get(label, 0) + 1
        out.append((classes[label], np.asarray(img.convert("RGB").resize((size, size)))))
    return out


# --- an image column of a workspace dataset ------------------------------------------------------------------------

COLUMN_FIELD = "architecture.image_column"


def decode_cells(cells: list, settings: Settings, size: int) -> tuple[object, list[int], dict[str, int]]:
    """An image column's cells, decoded as `decode_all` does: a cell is the encoded bytes, a `datasets` Image
    value ({"bytes", "path"}, undecoded) or a path to an image file. A relative path is looked for in the folders
    "Path on the server" may read (core.data.paths), as a folder's path is; a path (or link) leading out of them,
    a missing file and an empty cell are skipped and counted, never opened."""
    import io

    from core.data.paths import allowed_dirs, resolve_inside

    roots = allowed_dirs(settings)
    sources, where, skipped = [], [], {"empty cells": 0, "paths outside the folders the server may read": 0,
                                       "missing files": 0}
    for i, cell in enumerate(cells):
        if isinstance(cell, dict):  # datasets.Image(decode=False): the bytes when embedded, else the file's path
            cell = cell.get("bytes") or cell.get("path")
        if isinstance(cell, (bytes, bytearray, memoryview)) and len(cell):
            sources.append(io.BytesIO(bytes(cell)))
            where.append(i)
            continue
        if not isinstance(cell, str) or not cell.strip() or "\x00" in cell or len(cell) > 4096:
            skipped["empty cells"] += 1
            continue
        real, root = resolve_inside(cell.strip(), roots)  # links resolved before the check, never after
        if root is None:
            skipped["paths outside the folders the server may read"] += 1
        elif not real.is_file():
            skipped["missing files"] += 1
        else:
            sources.append(real)
            where.append(i)
    pixels, kept, counts = decode_all(sources, size, f"of {len(cells):,} rows")
    return pixels, [where[k] for k in kept], {k: v for k, v in (skipped | counts).items() if v}
