from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from illustra.collection import Collection
from illustra.errors import SourceError
from illustra.pipeline import IngestStage
from illustra.sources import ingest
from illustra.sources import openclipart as oc

# The Debian packages scripts/setup.sh installs; two tests read them as they are.
REAL_SVG = Path("/usr/share/openclipart/svg")


def _need_package() -> None:
    assert REAL_SVG.is_dir(), "the Debian package openclipart-svg is missing: run bash scripts/setup.sh"


NS = (
    'xmlns="http://www.w3.org/2000/svg" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="{cc}"'
)


def svg(work: str, cc: str = "http://web.resource.org/cc/", extra_rdf: str = "", head: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{head}<svg {NS.format(cc=cc)} width="10" height="10">'
        f"<metadata><rdf:RDF>{work}{extra_rdf}</rdf:RDF></metadata>"
        '<rect width="10" height="10"/></svg>'
    )


FULL = svg(
    """<cc:Work rdf:about="">
      <dc:title>A  Red
         Fox</dc:title>
      <dc:description>Sitting in the snow</dc:description>
      <dc:subject><rdf:Bag><rdf:li>fox</rdf:li><rdf:li></rdf:li><rdf:li>animal</rdf:li>
         <rdf:li>fox</rdf:li></rdf:Bag></dc:subject>
      <dc:publisher><cc:Agent><dc:title>Someone Else</dc:title></cc:Agent></dc:publisher>
      <dc:creator><cc:Agent><dc:title>Jane Doe</dc:title></cc:Agent></dc:creator>
      <dc:date>2005-06-21</dc:date>
      <cc:license rdf:resource="http://web.resource.org/cc/PublicDomain"/>
    </cc:Work>"""
)


# -- SVG metadata -------------------------------------------------------------------------------
def test_reads_dublin_core_from_handwritten_svg():
    meta = oc.parse_svg_metadata(FULL)
    assert meta is not None
    assert meta.title == "A Red Fox"
    assert meta.description == "Sitting in the snow"
    assert meta.keywords == ["fox", "animal"]
    assert meta.creator == "Jane Doe"  # the creator agent, not the publisher's
    assert meta.date == "2005-06-21"
    assert meta.licence == "http://web.resource.org/cc/PublicDomain"


def test_licence_from_license_element_creator_as_text_and_newer_namespace():
    doc = svg(
        "<cc:Work><dc:title>Boat</dc:title><dc:creator>Plain Name</dc:creator>"
        "<dc:subject>sea, boat; sail</dc:subject></cc:Work>",
        cc="http://creativecommons.org/ns#",
        extra_rdf='<cc:License rdf:about="http://creativecommons.org/licenses/by-sa/3.0/"/>',
    )
    meta = oc.parse_svg_metadata(doc)
    assert meta is not None
    assert (meta.title, meta.creator) == ("Boat", "Plain Name")
    assert meta.keywords == ["sea", "boat", "sail"]
    assert meta.licence == "http://creativecommons.org/licenses/by-sa/3.0/"


def test_boilerplate_descriptions_are_dropped():
    doc = svg(
        "<cc:Work><dc:title>T</dc:title><dc:description>Created with Inkscape</dc:description></cc:Work>"
    )
    assert oc.parse_svg_metadata(doc).description == ""  # type: ignore[union-attr]


def test_svg_without_metadata_gives_none():
    assert oc.parse_svg_metadata('<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>') is None


def test_malformed_svg_raises_source_error():
    with pytest.raises(SourceError, match="malformed SVG"):
        oc.parse_svg_metadata(FULL.replace("</dc:title>", "", 1))
    with pytest.raises(SourceError, match="malformed SVG"):
        oc.parse_svg_metadata(b"\x00\x01 not xml at all")


def test_external_entities_are_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    head = f'<!DOCTYPE svg [<!ENTITY leak SYSTEM "file://{secret}">]>'
    doc = svg("<cc:Work><dc:title>&leak;</dc:title></cc:Work>", head=head)
    with pytest.raises(SourceError, match="external"):
        oc.parse_svg_metadata(doc)


def test_entity_expansion_bomb_is_refused():
    lol = '<!ENTITY a "lollollollol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    doc = svg("<cc:Work><dc:title>&b;</dc:title></cc:Work>", head=f"<!DOCTYPE svg [{lol}]>")
    with pytest.raises(SourceError, match="nested"):
        oc.parse_svg_metadata(doc)


def test_illustrator_namespace_entities_are_accepted():
    head = '<!DOCTYPE svg [<!ENTITY ns_svg "http://www.w3.org/2000/svg"><!ENTITY ns_x "http://ns.adobe.com/X/">]>'
    meta = oc.parse_svg_metadata(svg("<cc:Work><dc:title>Logo</dc:title></cc:Work>", head=head))
    assert meta is not None and meta.title == "Logo"


def test_reads_real_openclipart_svgs():
    _need_package()
    cross = oc.read_svg_metadata(REAL_SVG / "geography/astronomy/southen_cross_01.svg")
    assert cross is not None
    assert cross.title == "Southen Cross"
    assert {"stars", "australia", "southern"} <= set(cross.keywords)
    assert "" not in cross.keywords
    assert cross.creator == "Chris Goerner"
    assert cross.licence == "http://web.resource.org/cc/PublicDomain"
    frogs = oc.read_svg_metadata(REAL_SVG / "animals/2_dead_frogs_lumen_desig_01.svg")
    assert frogs is not None
    assert frogs.title == "2 dead frogs"
    assert frogs.description.startswith("2 dead frogs")
    assert "frog" in frogs.keywords
    assert frogs.creator == "Lumen Design Studio"


def test_title_from_filename():
    assert oc.title_from_filename("gatto_cat_architetto_fra_01") == "Gatto cat architetto fra"
    assert oc.title_from_filename("mechorse") == "Mechorse"
    assert oc.title_from_filename("01") == "01"


# -- a small package tree on disk ----------------------------------------------------------------
def _png(path: Path, im: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG")


def _svg(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    png, svgs = tmp_path / "pkg" / "png", tmp_path / "pkg" / "svg"
    # Transparent red disc on a transparent background: must come out composited on white.
    disc = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    disc.paste((220, 20, 20, 255), (16, 16, 48, 48))
    _png(png / "animals/foxes/fox_01.png", disc)
    _svg(svgs / "animals/foxes/fox_01.svg", FULL)
    _png(png / "signs/tiny_flag_01.png", Image.new("RGB", (3, 2), (0, 0, 255)))
    _svg(svgs / "signs/tiny_flag_01.svg", "<svg><metadata>broken")
    _png(png / "food/wide_banner.png", Image.new("LA", (1200, 100), (128, 255)))  # no SVG at all
    _png(png / "food/huge_cake_01.png", Image.new("RGB", (400, 400), (200, 150, 100)))
    _svg(svgs / "food/huge_cake_01.svg", svg("<cc:Work><dc:title>Cake</dc:title></cc:Work>"))
    # The same file under a second folder, as the Debian package does with symlinks.
    (png / "nature").mkdir(parents=True)
    os.symlink(png / "animals/foxes/fox_01.png", png / "nature/fox_01.png")
    return png, svgs


def test_list_images_resolves_and_dedupes_symlinks(tree, tmp_path):
    png, _ = tree
    outside = tmp_path / "elsewhere.png"
    _png(outside, Image.new("RGB", (8, 8)))
    os.symlink(outside, png / "food/escape.png")
    ids = [i for i, _ in oc.list_images(png)]
    assert ids == ["animals/foxes/fox_01", "food/huge_cake_01", "food/wide_banner", "signs/tiny_flag_01"]
    with pytest.raises(SourceError, match="apt-get install"):
        oc.list_images(tmp_path / "nowhere")


def test_select_spreads_evenly_and_is_stable():
    items = [(str(i), Path(str(i))) for i in range(100)]
    picked = oc.select(items, 4)
    assert [i for i, _ in picked] == ["0", "25", "50", "75"]
    assert oc.select(items, 4) == picked
    assert oc.select(items, None) == items and oc.select(items, 500) == items


def test_ingest_rows_metadata_and_images(tree, tmp_path, monkeypatch):
    png, svgs = tree
    monkeypatch.setenv("ILLUSTRA_STORED_IMAGE_SIDE", "256")
    monkeypatch.setenv("ILLUSTRA_MAX_IMAGE_PIXELS", "150000")  # the 400x400 cake is "gigantic" here
    root = tmp_path / "coll"
    summary = ingest(root, oc.OpenClipArtSource(png, svgs), progress=False)
    # Gigantic local files are shrunk in bounded memory, not refused.
    assert summary.added == 4 and summary.skipped == 0
    assert summary.counts["metadata_failures"] == 1 and summary.counts["missing_svg"] == 1
    coll = Collection(root)
    cake = Image.open(io.BytesIO(coll.image_bytes(coll.row_of("food/huge_cake_01")) or b""))
    assert max(cake.size) == 256
    assert sorted(coll.ids.tolist()) == [
        "animals/foxes/fox_01",
        "food/huge_cake_01",
        "food/wide_banner",
        "signs/tiny_flag_01",
    ]
    assert coll.text_fields == ["title", "description", "keywords"]
    fox = coll.metadata(coll.row_of("animals/foxes/fox_01"))
    assert fox["title"] == "A Red Fox" and fox["keywords"] == "fox, animal"
    assert fox["creator"] == "Jane Doe" and fox["year"] == 2005
    assert fox["category"] == "animals" and fox["folder"] == "animals/foxes"
    assert fox["licence"] == "http://web.resource.org/cc/PublicDomain"
    assert fox["image_path"] == str(png / "animals/foxes/fox_01.png")
    im = Image.open(io.BytesIO(coll.image_bytes(coll.row_of("animals/foxes/fox_01")) or b""))
    assert im.getpixel((2, 2)) == pytest.approx((255, 255, 255), abs=3)  # transparency on white
    r, g, b = im.getpixel((32, 32))
    assert r > 180 and g < 80 and b < 80
    tiny = coll.metadata(coll.row_of("signs/tiny_flag_01"))
    assert tiny["title"] == "Tiny flag"  # malformed SVG: title from the file name
    assert Image.open(io.BytesIO(coll.image_bytes(coll.row_of("signs/tiny_flag_01")) or b"")).size == (3, 2)
    banner = Image.open(io.BytesIO(coll.image_bytes(coll.row_of("food/wide_banner")) or b""))
    assert banner.size == (256, 21)  # shrunk to the stored size
    assert coll.metadata(coll.row_of("food/wide_banner"))["svg_path"] == ""
    [entry] = [s for s in coll.manifest["sources"] if s["kind"] == "openclipart"]
    assert entry["complete"] and entry["added"] == 4 and entry["limit"] is None
    assert entry["selected"] == 4 and entry["image_failures"] == {}
    assert entry["metadata_failures"] == 1 and entry["missing_svg"] == 1
    # Every item that was skipped or degraded is listed with its reason.
    log = (root / "ingest_report.tsv").read_text(encoding="utf-8").splitlines()
    assert any(
        line.startswith("signs/tiny_flag_01\t") and line.endswith("title from file name") for line in log
    )


def test_images_that_cannot_be_decoded_are_counted_by_kind(tree, tmp_path):
    png, svgs = tree
    (png / "food/broken_01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    summary = ingest(tmp_path / "coll", oc.OpenClipArtSource(png, svgs), progress=False)
    assert summary.added == 4 and summary.skipped == 1
    [entry] = Collection(tmp_path / "coll").manifest["sources"]
    assert entry["selected"] == 5 and sum(entry["image_failures"].values()) == 1
    assert entry["added"] + sum(entry["image_failures"].values()) == entry["selected"]


def test_html_entities_in_svg_metadata_are_decoded_once(tree, tmp_path):
    png, svgs = tree
    # As the package has it: the XML escapes the "&" of an HTML character reference.
    work = (
        "<cc:Work><dc:title>Gelato all&amp;#39;italiana</dc:title>"
        "<dc:description>Fish &amp;amp;amp; chips</dc:description></cc:Work>"
    )
    _svg(svgs / "food/huge_cake_01.svg", svg(work))
    ingest(tmp_path / "coll", oc.OpenClipArtSource(png, svgs), progress=False)
    coll = Collection(tmp_path / "coll")
    cake = coll.metadata(coll.row_of("food/huge_cake_01"))
    assert cake["title"] == "Gelato all'italiana"
    assert cake["description"] == "Fish &amp; chips"  # one decoding, not two


def test_source_works_with_the_generic_ingest_driver(tree, tmp_path):
    png, svgs = tree
    summary = ingest(tmp_path / "generic", oc.OpenClipArtSource(png, svgs, limit=3))
    assert summary.added == 3 and summary.skipped == 0
    coll = Collection(tmp_path / "generic")
    assert coll.text_fields == ["title", "description", "keywords"]
    assert coll.metadata(coll.row_of("animals/foxes/fox_01"))["keywords"] == "fox, animal"
    again = ingest(tmp_path / "generic", oc.OpenClipArtSource(png, svgs, limit=3))
    assert again.added == 0 and again.already_present == 3


def test_ingest_resumes_and_a_finished_run_is_reused(tree, tmp_path):
    png, svgs = tree
    root = tmp_path / "coll"
    two, every = IngestStage(oc.OpenClipArtSource(png, svgs, 2)), IngestStage(oc.OpenClipArtSource(png, svgs))
    assert not two.is_current(root) and two.is_current(root).reason == "no collection yet"
    first = two.build(root, progress=False).result
    assert first.added == 2 and two.is_current(root) and not every.is_current(root)
    # A larger run (as after an interrupted one) only decodes what is missing.
    more = every.build(root, progress=False).result
    assert more.already_present == 2 and more.added == 2
    assert len(Collection(root)) == 4
    assert every.is_current(root) and two.is_current(root)
    entries = [s for s in Collection(root).manifest["sources"] if s["kind"] == "openclipart"]
    assert [(e["limit"], e["added"], e["complete"]) for e in entries] == [(2, 2, True), (None, 2, True)]


def test_an_interrupted_ingest_keeps_its_rows_and_is_not_current(tree, tmp_path, monkeypatch):
    png, svgs = tree
    root = tmp_path / "coll"
    stage = IngestStage(oc.OpenClipArtSource(png, svgs, workers=1))
    real = oc.make_row
    calls = {"n": 0}

    def interrupt_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(oc, "make_row", interrupt_third)
    summary = stage.build(root, progress=False).result
    assert summary.interrupted and summary.added == 2 and len(Collection(root)) == 2
    assert not stage.is_current(root)
    monkeypatch.setattr(oc, "make_row", real)
    resumed = stage.build(root, progress=False).result
    assert resumed.already_present == 2 and resumed.added == 2 and stage.is_current(root)


def test_real_package_listing_matches_the_documented_ids():
    _need_package()
    items = oc.list_images()
    assert len(items) == 6900
    ids = {i for i, _ in items}
    assert "animals/mammals/housecats/gatto_cat_architetto_fra_01" in ids
    assert "geography/astronomy/southen_cross_01" in ids  # a symlink target
    assert "science/astronomy/southen_cross_01" not in ids  # the symlink itself
