"""Tests for semstyle.io: real files in tmp_path, real Pillow encoders, no mocks."""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile

from semstyle.errors import ConfigError, ImageError, SemstyleError
from semstyle.io import (
    DIGITAL_SOURCE_TYPE,
    IMAGE_EXTENSIONS,
    Provenance,
    ensure_writable,
    image_to_tensor,
    list_images,
    load_image,
    read_provenance,
    save_image,
    tensor_to_image,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CHICAGO = DATA / "content" / "chicago.jpg"

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "semstyle": "urn:x-semstyle:xmp:1.0/",
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def noise_image(size=(64, 48), mode="RGB") -> Image.Image:
    """Detailed content, so encoded files are large enough to cut in half."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def write(img: Image.Image, path: Path, **params) -> Path:
    img.save(path, **params)
    return path


def pixel(img: Image.Image, xy=(0, 0)) -> tuple[int, ...]:
    return tuple(img.getpixel(xy))


def assert_close(actual, expected, tol=3):
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected)), (actual, expected)


def assert_one_line_error(excinfo, path: Path, *words: str) -> str:
    """Every user error is one line that names the file."""
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message.lower(), message
    return message


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_icc_profile(red, green, blue, gamma=2.2) -> bytes:
    """A minimal ICC v2 matrix/TRC RGB profile with the given D50 primaries."""
    def xyz(x, y, z):
        return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    text = b"semstyle test RGB\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3) + bytes(67)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*red)),
            (b"gXYZ", xyz(*green)), (b"bXYZ", xyz(*blue)), (b"rTRC", curve),
            (b"gTRC", curve), (b"bTRC", curve)]
    start = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body
    header = (struct.pack(">I", start + len(data)) + bytes(4) + struct.pack(">I", 0x02100000)
              + b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(24) + bytes(4)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + table + data


SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


# --------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "does not exist")


def test_directory_instead_of_file(tmp_path):
    path = tmp_path / "photos.jpg"
    path.mkdir()
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "folder")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "empty")


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated_file_raises_instead_of_padding(tmp_path, fmt, ext):
    full = write(noise_image((128, 96)), tmp_path / f"full{ext}", format=fmt)
    data = full.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    assert load_image(full).size == (128, 96)
    with pytest.raises(ImageError) as exc:
        load_image(cut)
    assert_one_line_error(exc, cut, "truncated")


def test_decoding_changes_no_pillow_setting(tmp_path):
    """semstyle never touches Pillow's module-level limits (a threaded server shares them):
    truncated files fail under Pillow's default, and the settings stay as they were."""
    full = write(noise_image((128, 96)), tmp_path / "full.jpg")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:2000])
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with pytest.raises(ImageError, match="truncated"):
        load_image(cut)
    assert load_image(full).size == (128, 96)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


class _GatedReader(io.RawIOBase):
    """A file whose reads wait for a gate after the header: a slow upload in a server."""

    def __init__(self, data: bytes, gate: threading.Event, started: threading.Event):
        self.data, self.pos, self.gate, self.started = data, 0, gate, started

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.data)}[whence] + offset
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= 64:  # past the header: the decode proper waits
            self.started.set()
            assert self.gate.wait(30)
        chunk = self.data[self.pos:self.pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def test_decodes_run_in_parallel_threads(tmp_path):
    """One decode stalled mid-file (a slow upload) does not hold up another thread's decode:
    there is no global lock around decoding, and the bomb guard still works in threads."""
    slow_bytes = write(noise_image((96, 64)), tmp_path / "slow.png").read_bytes()
    quick = write(noise_image((80, 60)), tmp_path / "quick.png")
    bomb = write(noise_image((64, 64)), tmp_path / "bomb.png")
    gate, started, results = threading.Event(), threading.Event(), {}

    def slow():
        results["slow"] = load_image(_GatedReader(slow_bytes, gate, started)).size

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        assert started.wait(30)  # the slow decode is inside Pillow now
        assert load_image(quick).size == (80, 60)  # ... and this one finishes meanwhile
        with pytest.raises(ImageError, match="decompression bomb"):
            load_image(bomb, max_pixels=1000)
        assert "slow" not in results
    finally:
        gate.set()
        worker.join(30)
    assert results["slow"] == (96, 64)


def test_load_image_takes_bytes_and_file_objects(tmp_path):
    data = write(noise_image((70, 50)), tmp_path / "a.png").read_bytes()
    assert load_image(data).size == (70, 50)
    assert load_image(io.BytesIO(data)).size == (70, 50)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"plain text, not an image" * 10)


def test_corrupt_bytes(tmp_path):
    path = tmp_path / "random.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "not an image")


def test_corrupt_data_after_valid_header(tmp_path):
    data = bytearray(write(noise_image((128, 96)), tmp_path / "ok.png").read_bytes())
    data[200:1200] = bytes(1000)  # zero the middle of the compressed stream
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "corrupt")


def test_text_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, path, "not an image")


@pytest.mark.parametrize("max_pixels", [3000, 1000])  # Pillow's warning path, then its error path
def test_decompression_bomb(tmp_path, recwarn, max_pixels):
    path = write(noise_image((64, 64)), tmp_path / "bomb.png")
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as exc:
        load_image(path, max_pixels=max_pixels)
    assert_one_line_error(exc, path, "decompression bomb", f"{max_pixels:,}")
    assert Image.MAX_IMAGE_PIXELS == before
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    assert load_image(path, max_pixels=64 * 64).size == (64, 64)


def test_too_small(tmp_path):
    path = write(noise_image((40, 10)), tmp_path / "tiny.png")
    with pytest.raises(ImageError) as exc:
        load_image(path, min_size=16)
    assert_one_line_error(exc, path, "40x10", "16 px")
    assert load_image(path, min_size=10).size == (40, 10)


def test_errors_are_semstyle_errors(tmp_path):
    with pytest.raises(SemstyleError):
        load_image(tmp_path / "missing.png")


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------

def test_real_photo():
    img = load_image(CHICAGO)
    with Image.open(CHICAGO) as raw:
        assert img.size == raw.size
        assert np.array_equal(np.asarray(img), np.asarray(raw.convert("RGB")))
    assert img.mode == "RGB" and img.info == {}


def test_rgb_png_is_loaded_exactly(tmp_path):
    src = noise_image((33, 17))
    img = load_image(write(src, tmp_path / "a.png"))
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), np.asarray(src))


def test_content_decides_format_not_extension(tmp_path):
    img = load_image(write(noise_image(), tmp_path / "really_a_png.jpg", format="PNG"))
    assert img.size == (64, 48)


def test_grayscale_l(tmp_path):
    img = load_image(write(Image.new("L", (20, 20), 77), tmp_path / "gray.png"))
    assert img.mode == "RGB" and img.size == (20, 20) and pixel(img) == (77, 77, 77)


def test_grayscale_with_alpha_la(tmp_path):
    src = Image.new("LA", (20, 20), (0, 0))  # transparent black
    src.paste((100, 255), (0, 0, 10, 20))  # opaque left half
    img = load_image(write(src, tmp_path / "la.png"))
    assert img.mode == "RGB"
    assert pixel(img, (2, 2)) == (100, 100, 100)
    assert pixel(img, (15, 2)) == (255, 255, 255)


def test_one_bit(tmp_path):
    src = Image.new("1", (20, 20), 0)
    src.paste(1, (0, 0, 10, 20))
    img = load_image(write(src, tmp_path / "bw.png"))
    assert img.mode == "RGB"
    assert pixel(img, (2, 2)) == (255, 255, 255) and pixel(img, (15, 2)) == (0, 0, 0)


def test_rgba_transparent_becomes_white(tmp_path):
    src = Image.new("RGBA", (20, 20), (10, 20, 30, 0))
    src.paste((200, 0, 0, 255), (0, 0, 10, 20))
    src.paste((0, 0, 200, 128), (10, 0, 20, 10))  # half transparent blue
    img = load_image(write(src, tmp_path / "rgba.png"))
    assert img.mode == "RGB" and img.size == (20, 20)
    assert pixel(img, (2, 2)) == (200, 0, 0)
    assert pixel(img, (15, 15)) == (255, 255, 255)
    assert_close(pixel(img, (15, 2)), (127, 127, 227), tol=2)


@pytest.mark.parametrize("ext", [".tif", ".jpg"])
def test_cmyk(tmp_path, ext):
    src = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red ink
    src.paste((255, 0, 255, 0), (16, 0, 32, 32))  # pure green
    img = load_image(write(src, tmp_path / f"cmyk{ext}"))
    assert img.mode == "RGB" and img.size == (32, 32)
    assert_close(pixel(img, (4, 16)), (255, 0, 0), tol=8)
    assert_close(pixel(img, (28, 16)), (0, 255, 0), tol=8)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32896, 65535] * 4] * 16, dtype=np.uint16)
    src = Image.fromarray(values)
    assert src.mode == "I;16"
    path = write(src, tmp_path / "deep.png")
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # really read back as 16-bit
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (16, 16)
    assert [pixel(img, (x, 0)) for x in range(4)] == [(0, 0, 0), (4, 4, 4), (128, 128, 128), (255, 255, 255)]


def test_16bit_big_endian_tiff(tmp_path):
    src = Image.fromarray(np.full((16, 16), 65535, dtype=">u2"))
    assert src.mode == "I;16B"
    img = load_image(write(src, tmp_path / "deep_be.tif"))
    assert pixel(img) == (255, 255, 255)


def test_32bit_integer_tiff(tmp_path):
    src = Image.fromarray(np.array([[0, 65535] * 8] * 16, dtype=np.int32))
    assert src.mode == "I"
    img = load_image(write(src, tmp_path / "int.tif"))
    assert pixel(img, (0, 0)) == (0, 0, 0) and pixel(img, (1, 0)) == (255, 255, 255)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_tiff(tmp_path, scale):
    src = Image.fromarray((np.array([[0.0, 0.5, 1.0, 1.0] * 4] * 16) * scale).astype(np.float32))
    assert src.mode == "F"
    img = load_image(write(src, tmp_path / "float.tif"))
    assert img.mode == "RGB"
    assert [pixel(img, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_palette_keeps_colours(tmp_path):
    src = Image.new("P", (20, 20), 0)
    src.putpalette([255, 0, 0, 0, 128, 0, 10, 20, 250] + [0] * (256 - 3) * 3)
    src.paste(1, (10, 0, 20, 10))
    src.paste(2, (10, 10, 20, 20))
    img = load_image(write(src, tmp_path / "pal.png"))
    assert img.mode == "RGB"
    assert pixel(img, (2, 2)) == (255, 0, 0)
    assert pixel(img, (15, 2)) == (0, 128, 0)
    assert pixel(img, (15, 15)) == (10, 20, 250)


def test_palette_with_transparency(tmp_path):
    src = Image.new("P", (20, 20), 0)
    src.putpalette([0, 0, 0, 0, 0, 255] + [0] * 254 * 3)
    src.paste(1, (10, 0, 20, 20))
    path = write(src, tmp_path / "pal_t.png", transparency=0)
    img = load_image(path)
    assert pixel(img, (2, 2)) == (255, 255, 255)  # transparent index -> white, not black
    assert pixel(img, (15, 2)) == (0, 0, 255)


def test_palette_with_alpha_pa_in_memory():
    src = Image.new("PA", (20, 20))
    src.putpalette([0, 200, 0] * 256)
    src.putalpha(0)
    assert tensor_to_image(image_to_tensor(src)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    src = Image.new("RGB", (40, 20), (0, 0, 255))
    src.paste((255, 0, 0), (0, 0, 20, 20))  # stored left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = write(src, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    img = load_image(path)
    assert img.size == (20, 40)
    assert_close(pixel(img, (10, 5)), (255, 0, 0), tol=12)  # left became top
    assert_close(pixel(img, (10, 35)), (0, 0, 255), tol=12)


def test_icc_profile_is_applied(tmp_path):
    # a profile whose "red" is sRGB green: pure red pixels must load as green
    swapped = rgb_icc_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    path = write(Image.new("RGB", (20, 20), (255, 0, 0)), tmp_path / "swapped.png", icc_profile=swapped)
    img = load_image(path)
    r, g, b = pixel(img)
    assert g > 200 and r < 60 and b < 60, (r, g, b)
    assert "icc_profile" not in img.info


def test_srgb_icc_profile_keeps_colours(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = write(Image.new("RGB", (20, 20), (200, 100, 50)), tmp_path / "srgb.png", icc_profile=srgb)
    assert_close(pixel(load_image(path)), (200, 100, 50), tol=2)


@pytest.mark.parametrize("icc", [b"garbage" * 40, b""])
def test_bad_icc_profile_falls_back(tmp_path, icc):
    src = Image.new("RGB", (20, 20), (200, 100, 50))
    path = write(src, tmp_path / "bad_icc.png", icc_profile=icc)
    assert pixel(load_image(path)) == (200, 100, 50)


def test_icc_profile_that_does_not_fit_the_mode_falls_back(tmp_path):
    rgb_profile = rgb_icc_profile(SRGB_RED, SRGB_GREEN, SRGB_BLUE)
    path = write(Image.new("L", (20, 20), 90), tmp_path / "gray_rgb_icc.png", icc_profile=rgb_profile)
    assert pixel(load_image(path)) == (90, 90, 90)


# --------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------

def test_tensor_round_trip():
    img = noise_image((37, 23))
    t = image_to_tensor(img)
    assert t.shape == (1, 3, 23, 37) and t.dtype == torch.float32
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert np.array_equal(np.asarray(tensor_to_image(t)), np.asarray(img))
    assert np.array_equal(np.asarray(tensor_to_image(t[0])), np.asarray(img))


def test_tensor_to_image_clamps_and_rounds():
    t = torch.tensor([-1.0, 2.0, 0.5, float("nan")]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    img = tensor_to_image(t)
    assert img.mode == "RGB" and img.size == (4, 1)
    assert [pixel(img, (x, 0))[0] for x in range(4)] == [0, 255, 128, 0]


def test_tensor_to_image_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        tensor_to_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        tensor_to_image(torch.zeros(1, 4, 4))


# --------------------------------------------------------------------------
# folders
# --------------------------------------------------------------------------

def test_list_images(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JpEg", "d.webp", "notes.txt", ".hidden.jpg", "e.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.jpg").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.JpEg", "d.webp", "e.tiff"]
    assert ".bmp" in IMAGE_EXTENSIONS


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(ImageError) as exc:
        list_images(tmp_path / "nope")
    assert_one_line_error(exc, tmp_path / "nope", "does not exist")


def test_list_images_not_a_folder(tmp_path):
    path = write(noise_image(), tmp_path / "a.png")
    with pytest.raises(ImageError) as exc:
        list_images(path)
    assert_one_line_error(exc, path, "not a folder")


def test_list_images_no_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ImageError) as exc:
        list_images(tmp_path)
    assert_one_line_error(exc, tmp_path, "no images", ".jpg")


# --------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------

def parse_xmp(xmp: str) -> ET.Element:
    root = ET.fromstring(xmp.encode("utf-8"))
    assert root.tag == "{adobe:ns:meta/}xmpmeta"
    assert root.find("rdf:RDF", NS) is not None
    return root


def test_provenance_defaults():
    from semstyle import __version__

    p = Provenance()
    assert p.software == "semstyle" and p.version == __version__
    assert p.styles == [] and p.model == "" and p.extra == {}
    assert p.created.endswith("Z") and p.created[:4].isdigit()


def test_xmp_packet_content_and_escaping():
    p = Provenance(styles=["Tom & Jerry <1>.jpg", 'say "hi".png'], model="m&m.safetensors",
                   extra={"strength": "0.8", "a<b": "x>y"})
    xmp = p.to_xmp()
    assert xmp.startswith("<?xpacket begin=") and xmp.endswith('<?xpacket end="w"?>')
    assert "Tom &amp; Jerry &lt;1&gt;.jpg" in xmp
    root = parse_xmp(xmp)
    desc = root.find("rdf:RDF/rdf:Description", NS)
    assert desc.find("Iptc4xmpExt:DigitalSourceType", NS).text == DIGITAL_SOURCE_TYPE
    assert desc.find("xmp:CreatorTool", NS).text == f"semstyle {p.version}"
    assert "Tom & Jerry <1>.jpg" in desc.find("dc:description/rdf:Alt/rdf:li", NS).text
    styles = [li.text for li in desc.findall("semstyle:Styles/rdf:Seq/rdf:li", NS)]
    assert styles == ["Tom & Jerry <1>.jpg", 'say "hi".png']
    assert desc.find("semstyle:Model", NS).text == "m&m.safetensors"
    extras = {li.find("semstyle:key", NS).text: li.find("semstyle:value", NS).text
              for li in desc.findall("semstyle:Extra/rdf:Bag/rdf:li", NS)}
    assert extras == {"strength": "0.8", "a<b": "x>y"}


def test_xmp_drops_characters_xml_cannot_hold():
    parse_xmp(Provenance(styles=["bad\x00\x07name.jpg"]).to_xmp())


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg", ".webp"])
def test_save_with_provenance_and_read_back(tmp_path, ext):
    p = Provenance(styles=["starry & night<.jpg", "wave.png"], model="model.safetensors")
    out = save_image(noise_image(), tmp_path / f"out{ext}", provenance=p)
    assert out == tmp_path / f"out{ext}"
    meta = read_provenance(out)
    assert meta["format"] == {".png": "PNG", ".webp": "WEBP"}.get(ext, "JPEG")
    assert meta["software"] == f"semstyle {p.version}"
    assert "starry & night<.jpg" in meta["description"]
    assert DIGITAL_SOURCE_TYPE in meta["xmp"] and "trainedAlgorithmicMedia" in meta["xmp"]
    assert "starry &amp; night&lt;.jpg" in meta["xmp"]
    desc = parse_xmp(meta["xmp"]).find("rdf:RDF/rdf:Description", NS)
    assert [li.text for li in desc.findall("semstyle:Styles/rdf:Seq/rdf:li", NS)] == \
        ["starry & night<.jpg", "wave.png"]
    assert load_image(out).size == (64, 48)
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_save_without_provenance_writes_no_metadata(tmp_path, ext):
    src = noise_image()
    src.info.update({"icc_profile": rgb_icc_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE),
                     "comment": b"old comment", "exif": b"Exif\x00\x00junk"})
    out = save_image(src, tmp_path / f"out{ext}")
    assert read_provenance(out) == {"format": read_provenance(out)["format"], "xmp": "",
                                    "software": "", "description": ""}
    with Image.open(out) as img:
        assert not img.getexif()
        assert not {"xmp", "exif", "icc_profile", "comment", "XML:com.adobe.xmp"} & set(img.info)
    data = out.read_bytes()
    assert b"xmpmeta" not in data and b"semstyle" not in data


def test_png_round_trip_is_lossless(tmp_path):
    src = noise_image((31, 29))
    out = save_image(src, tmp_path / "exact.png", provenance=Provenance())
    assert np.array_equal(np.asarray(load_image(out)), np.asarray(src))


def test_save_rgba_as_jpeg_flattens(tmp_path):
    out = save_image(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), tmp_path / "flat.jpg")
    assert_close(pixel(load_image(out)), (255, 255, 255))


def test_read_provenance_errors(tmp_path):
    with pytest.raises(ImageError):
        read_provenance(tmp_path / "missing.png")
    text = tmp_path / "t.png"
    text.write_text("hello")
    with pytest.raises(ImageError):
        read_provenance(text)


# --------------------------------------------------------------------------
# saving: checks and atomicity
# --------------------------------------------------------------------------

class ExplodingImage(Image.Image):
    """An image whose encoder dies half-way, after writing some bytes."""

    error: BaseException = OSError("simulated disk full")

    def save(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise self.error


def exploding(error: BaseException) -> Image.Image:
    img = noise_image()
    img.__class__ = ExplodingImage
    img.error = error
    return img


@pytest.mark.parametrize("name", ["out.gif", "out.tiff", "out.PNGX", "out"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ImageError) as exc:
        save_image(noise_image(), path)
    assert_one_line_error(exc, path, "unsupported", ".png", ".jpg", ".webp")
    with pytest.raises(ImageError):
        ensure_writable(path)
    assert list(tmp_path.iterdir()) == []


def test_extension_is_case_insensitive(tmp_path):
    out = save_image(noise_image(), tmp_path / "UPPER.JPG")
    assert read_provenance(out)["format"] == "JPEG"


def test_missing_output_folder(tmp_path):
    path = tmp_path / "no" / "such" / "out.png"
    for call in (lambda: ensure_writable(path), lambda: save_image(noise_image(), path)):
        with pytest.raises(ImageError) as exc:
            call()
        assert_one_line_error(exc, path, "cannot write", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_output_parent_is_a_file(tmp_path):
    parent = write(noise_image(), tmp_path / "a.png")
    with pytest.raises(ImageError) as exc:
        ensure_writable(parent / "out.png")
    assert_one_line_error(exc, parent / "out.png", "not a folder")


def test_output_is_a_folder(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageError) as exc:
        save_image(noise_image(), tmp_path / "out.png")
    assert_one_line_error(exc, tmp_path / "out.png", "folder")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user")
def test_unwritable_output_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageError) as exc:
            save_image(noise_image(), folder / "out.png")
        assert_one_line_error(exc, folder / "out.png", "not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_ensure_writable_returns_path(tmp_path):
    assert ensure_writable(str(tmp_path / "x.webp")) == tmp_path / "x.webp"
    assert not (tmp_path / "x.webp").exists()


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old content")
    path.chmod(0o640)
    save_image(noise_image(), path)
    assert load_image(path).size == (64, 48)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # permissions kept
    assert no_temp_files(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_new_file_gets_normal_permissions_not_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        out = save_image(noise_image(), tmp_path / "new.png")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_failure_mid_encode_keeps_old_file(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous good image")
    with pytest.raises(ImageError) as exc:
        save_image(exploding(OSError("simulated disk full")), path)
    assert_one_line_error(exc, path, "simulated disk full")
    assert path.read_bytes() == b"previous good image"
    assert no_temp_files(tmp_path)


def test_interrupt_mid_encode_is_not_swallowed_and_cleans_up(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        save_image(exploding(KeyboardInterrupt()), tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []


def test_real_encoder_failure_leaves_nothing(tmp_path):
    too_wide = Image.new("RGB", (16384 + 16, 16))  # beyond WebP's 16383 px limit
    with pytest.raises(ImageError) as exc:
        save_image(too_wide, tmp_path / "wide.webp")
    assert_one_line_error(exc, tmp_path / "wide.webp", "cannot write")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("quality", [0, 101])
def test_bad_quality(tmp_path, quality):
    with pytest.raises(ConfigError, match="quality"):
        save_image(noise_image(), tmp_path / "q.jpg", quality=quality)


def test_quality_changes_jpeg_size(tmp_path):
    img = noise_image((128, 128))
    small = save_image(img, tmp_path / "low.jpg", quality=20).stat().st_size
    large = save_image(img, tmp_path / "high.jpg", quality=95).stat().st_size
    assert small < large
