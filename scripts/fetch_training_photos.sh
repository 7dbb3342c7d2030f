#!/usr/bin/env bash
# Fetch real photographs (landscapes, nature, animals, objects, street scenes)
# from Debian packages, for training the style-transfer model.
#
# Usage: scripts/fetch_training_photos.sh [DEST_DIR]     (default: data/train_photos)
#
# The packages are fetched with `apt-get download` into a temporary directory.
# Nothing is installed. Each .deb is unpacked with `dpkg-deb -x`. Only the files
# on the include list below are copied. Every one of them was checked by eye to
# be a real camera photo, not an illustration, abstract art, a logo or a render.
# Each photo is downscaled so its longer side is at most 1024 px and saved as
# DEST_DIR/PKG__NAME.jpg (JPEG quality 90).
# DEST_DIR/SOURCES.txt records the package, version, licence and copyright
# holders of every file, taken from usr/share/doc/PKG/copyright inside the .deb.
#
# The script is idempotent. A package whose outputs all exist already is not
# downloaded again.
#
# Env: PYTHON (default .venv/bin/python at the repo root; it needs Pillow).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
DEST_DIR="${1:-$REPO_ROOT/data/train_photos}"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
MIN_SHORT_SIDE=512
MAX_LONG_SIDE=1024

# package | image dir inside the .deb | the same dir's path in debian/copyright "Files:"
#   [| licence | copyright holders]: only for a copyright file that is not
#   machine-readable (no Files: paragraph matches); read from it by hand.
PACKAGES=(
    "mate-backgrounds|usr/share/backgrounds/mate|"
    "lomiri-wallpapers-16.04|usr/share/backgrounds|16.04/"
    "lomiri-wallpapers-20.04|usr/share/backgrounds|20.04/"
    "lxqt-themes|usr/share/lxqt/wallpapers|wallpapers/"
    "plasma-workspace-wallpapers|usr/share/wallpapers|"
    "opencv-doc|usr/share/doc/opencv-doc/examples|samples/"
    "kphotoalbum|usr/share/kphotoalbum/demo||GPL-2+|2003-2014 Jesper K. Pedersen <blackie@kde.org> and the KPhotoAlbum authors"
    "palapeli-data|usr/share/palapeli/collection|puzzles/"
    "tuxpaint-data|usr/share/tuxpaint/templates|templates/"
    "scribus-template|usr/share/scribus/templates||public-domain|2004 Riku Leino <tsoots@gmail.com> (templates br2, cal2, menu2; placed into the public domain by their author)"
    "sddm-theme-maldives|usr/share/sddm/themes/maldives|data/themes/maldives/"
    "libjxl-testdata|usr/share/libjxl-testdata|"
    "ruby-rmagick-doc|usr/share/doc/ruby-rmagick-doc/html/ex/images|doc/ex/images/"
)

# Include list: "package  path relative to the image dir". These were picked by
# looking at every image in the packages. The rest is abstract or rendered art,
# logos, textures, test patterns or images that are too small. Left out on
# purpose:
#   mate-backgrounds: abstract/* (Elephants is a painting), desktop/* (logos, gradients)
#   lomiri-16.04: analogpattern (texture macro), umang (digital abstract)
#   lomiri-20.04: Fossa, Infinite-Sea, Painting-Colors (digital art)
#   lxqt-themes: origami/plasma/triangles/waves/simple_blue/kde-plasma (graphics)
#   plasma: Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow, FlyingKonqui,
#           Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak,
#           SafeLanding, Shell, Volna (illustrations/renders)
#   opencv-doc: charts, masks, calibration boards, apple/orange (noisy scans),
#               and every photo under 512 px on its shorter side
#   kphotoalbum: anne_helene (400 px wide), movie.avi; grand_canyon_1, new_wave_1,
#                pool_2, wayne (stored sideways/upside down: the demo's index.xml
#                rotates them on display)
#   palapeli-data: backgrounds/* (tiling textures)
#   tuxpaint-data: burnt_bark, mudstone, ocean_splash (texture close-ups);
#                  mossy_bark, trees_above, trees_at_dusk, wool_mill_machine (< 512 px);
#                  ../starters/* (drawings, maps, frames)
#   scribus-template: br2/moon (moon on black), br2/brightness (near-duplicate of
#                     br2/halfmoon), portraits and logos under 512 px; the other
#                     templates have no photo >= 512 px
#   sddm-theme-maldives: maldives.jpg (screenshot of the login screen)
#   libjxl-testdata: the flower photo's re-encodings and crop (duplicates of
#                    flower.png), wide-gamut test charts, pngsuite, the rest < 512 px
#   ruby-rmagick-doc: Coffee (clip art), No/Snake (drawings), the rest < 512 px
# Looked at and not used at all: ukui-wallpapers, gnome-backgrounds, sway-backgrounds,
#   xfdesktop4-data, lomiri-wallpapers, desktop-base, fvwm-crystal, afterstep-data,
#   arctica-greeter, ukui-greeter, sddm-theme-maui/maya (renders, logos, gradients);
#   digikam-data (one landscape with no author or licence stated for it);
#   python-matplotlib-data (grace_hopper: its copyright paragraph names no licence
#   on the License: line); tuxtype-data (Wikimedia Commons photos without per-file
#   authors or licences; its copyright file describes older NOAA/FWS images);
#   tuxtype's backgrounds/* (space telescope composites); jigzo-data,
#   gcompris-qt-data, kdegames-mahjongg-data-kf5, gthumb-data,
#   insighttoolkit5-examples, rawtherapee-data (nothing >= 512 px that is a photo)
INCLUDE='
mate-backgrounds nature/Aqua.jpg
mate-backgrounds nature/Blinds.jpg
mate-backgrounds nature/Dune.jpg
mate-backgrounds nature/FreshFlower.jpg
mate-backgrounds nature/Garden.jpg
mate-backgrounds nature/GreenMeadow.jpg
mate-backgrounds nature/LadyBird.jpg
mate-backgrounds nature/RainDrops.jpg
mate-backgrounds nature/Storm.jpg
mate-backgrounds nature/TwoWings.jpg
mate-backgrounds nature/Wood.jpg
mate-backgrounds nature/YellowFlower.jpg
lomiri-wallpapers-16.04 Bridge_by_Sander_Klootwijk.jpg
lomiri-wallpapers-16.04 Dragonfly_by_Bolly.jpg
lomiri-wallpapers-16.04 Picture_0B_by_freespace.jpg
lomiri-wallpapers-16.04 Picture_1A_by_freespace.jpg
lomiri-wallpapers-16.04 Wine_by_Jakkub_Mede.jpg
lomiri-wallpapers-16.04 aitzgorri_by_Aitzol_Berasategi.jpg
lomiri-wallpapers-16.04 free_by_Peter_Nerlich.jpg
lomiri-wallpapers-16.04 friends_by_Aitzol_Berasategi.jpg
lomiri-wallpapers-16.04 greentock_by_Peter_Nerlich.jpg
lomiri-wallpapers-16.04 life_by_Aitzol_Berasategi.jpg
lomiri-wallpapers-16.04 picosdeeuropa_by_Aitzol_Berasategi.jpg
lomiri-wallpapers-16.04 seeding_by_Clements_Engelhardt.jpg
lomiri-wallpapers-16.04 sunset_by_Aitzol_Berasategi.jpg
lomiri-wallpapers-20.04 Kleiber_by_Lukas_Baubkus.jpg
lxqt-themes Butterfly-Kenneth-Wimer.jpg
lxqt-themes Valendas.png
lxqt-themes after-the-rain.jpg
lxqt-themes appleflower.png
lxqt-themes beam.png
lxqt-themes butterfly.png
lxqt-themes cloud.png
lxqt-themes drop.png
lxqt-themes flowers.png
lxqt-themes fog.jpg
lxqt-themes this-is-not-windows.jpg
plasma-workspace-wallpapers BytheWater/contents/images/2560x1600.jpg
plasma-workspace-wallpapers ColdRipple/contents/images/2560x1600.jpg
plasma-workspace-wallpapers ColorfulCups/contents/images/2560x1600.jpg
plasma-workspace-wallpapers DarkestHour/contents/images/2560x1600.jpg
plasma-workspace-wallpapers EveningGlow/contents/images/2560x1600.jpg
plasma-workspace-wallpapers FallenLeaf/contents/images/2560x1600.jpg
plasma-workspace-wallpapers Grey/contents/images/2560x1600.jpg
plasma-workspace-wallpapers Kite/contents/images/2560x1600.jpg
plasma-workspace-wallpapers OneStandsOut/contents/images/2560x1600.jpg
plasma-workspace-wallpapers Path/contents/images/2560x1600.jpg
plasma-workspace-wallpapers summer_1am/contents/images/2560x1600.jpg
opencv-doc text/scenetext01.jpg
opencv-doc text/scenetext02.jpg
opencv-doc text/scenetext03.jpg
opencv-doc text/scenetext04.jpg
opencv-doc text/scenetext05.jpg
opencv-doc data/aloeL.jpg
opencv-doc data/baboon.jpg
opencv-doc data/building.jpg
opencv-doc data/chicky_512.png
opencv-doc data/graf1.png
opencv-doc data/leuvenA.jpg
kphotoalbum bar55.jpg
kphotoalbum bar55_2.jpg
kphotoalbum blackie.jpg
kphotoalbum cold_water.jpg
kphotoalbum donna.jpg
kphotoalbum donna_2.jpg
kphotoalbum grand_canyon_2.jpg
kphotoalbum grand_canyon_3.jpg
kphotoalbum jesper.jpg
kphotoalbum jesper_2.jpg
kphotoalbum new_wave_2.jpg
kphotoalbum pool.jpg
kphotoalbum qt-logo.jpg
kphotoalbum skagen.jpg
kphotoalbum skagen_2.jpg
kphotoalbum snow.jpg
kphotoalbum spiff.jpg
kphotoalbum spiff_2.jpg
kphotoalbum sunset.jpg
palapeli-data castle-maintenon.jpg
palapeli-data cincinnati-bridge.jpg
palapeli-data citrus-fruits.jpg
palapeli-data european-honey-bee.jpg
palapeli-data panther-chameleon-female.jpg
tuxpaint-data cliff.jpg
tuxpaint-data corn_maze.jpg
tuxpaint-data jellyfish.jpg
tuxpaint-data lighthouse.jpg
tuxpaint-data mossy_log.jpg
tuxpaint-data ocean_waves.jpg
tuxpaint-data redwoods_above.jpg
tuxpaint-data rocks.jpg
tuxpaint-data sheep.jpg
tuxpaint-data spiders_web.jpg
tuxpaint-data sun_behind_clouds.jpg
tuxpaint-data sun_behind_leaves.jpg
scribus-template br2/halfmoon.jpg
scribus-template br2/nature.jpg
scribus-template br2/sunset.jpg
scribus-template cal2/moon.jpg
scribus-template menu2/pizza.jpg
sddm-theme-maldives background.jpg
libjxl-testdata jxl/flower/flower.png
ruby-rmagick-doc Ballerina3.jpg
ruby-rmagick-doc Cheetah.jpg
'

log() { printf '%s\n' "$*" >&2; }

# Output name: PKG__<original file name without extension>.jpg. When the name is
# only a resolution (plasma: Path/contents/images/2560x1600.jpg), the wallpaper's
# folder name is used instead.
out_name() {
    local pkg="$1" rel="$2" stem
    stem="$(basename "$rel")"
    stem="${stem%.*}"
    if [[ "$stem" =~ ^[0-9]+x[0-9]+$ ]]; then
        stem="${rel%%/*}"
    fi
    printf '%s__%s.jpg' "$pkg" "$stem"
}

files_of() {  # files_of PKG -> the package's include-list paths, one per line
    awk -v p="$1" '$1 == p { print $2 }' <<<"$INCLUDE"
}

start_s=$SECONDS

if ! "$PYTHON" -c 'import PIL' 2>/dev/null; then
    log "error: '$PYTHON' cannot import PIL (set PYTHON to an interpreter with Pillow)"
    exit 1
fi
for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { log "error: $tool not found (Debian/Ubuntu needed)"; exit 1; }
done

mkdir -p "$DEST_DIR"
DEST_DIR="$(cd "$DEST_DIR" && pwd)"

# Which packages still have an output (or its SOURCES.txt row) missing?
needed=()
for entry in "${PACKAGES[@]}"; do
    pkg="${entry%%|*}"
    while IFS= read -r rel; do
        [[ -n "$rel" ]] || continue
        name="$(out_name "$pkg" "$rel")"
        if [[ ! -s "$DEST_DIR/$name" ]] || ! grep -q "^${name}"$'\t' "$DEST_DIR/SOURCES.txt" 2>/dev/null; then
            needed+=("$pkg")
            break
        fi
    done < <(files_of "$pkg")
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch_training_photos.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/rows.tsv"

cat >"$TMP/process.py" <<'PY'
"""Copy, downscale and record the photos of one unpacked package.

argv: pkg version root imgdir srcprefix dest min_short max_long rows.tsv manual_license manual_holders
(the last two are used only when no Files: paragraph of the copyright file matches)
stdin: one "rel<TAB>outname" line per included file.
"""
import fnmatch, json, os, sys
from PIL import Image, ImageOps

Image.MAX_IMAGE_PIXELS = None
pkg, version, root, imgdir, srcprefix, dest, min_short, max_long, rows_path, manual_lic, manual_holders = sys.argv[1:]
min_short, max_long = int(min_short), int(max_long)


def dep5(path):
    """Parse a debian/copyright file into a list of {field: value} paragraphs."""
    paras, cur, key = [], {}, None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if cur:
                    paras.append(cur)
                cur, key = {}, None
            elif line[0] in " \t":
                if key:
                    cur[key] += "\n" + line.strip()
            elif ":" in line:
                key, val = line.split(":", 1)
                key = key.strip().lower()
                cur[key] = val.strip()
    if cur:
        paras.append(cur)
    return paras


copyright_path = os.path.join(root, "usr/share/doc", pkg, "copyright")
paras = dep5(copyright_path) if os.path.exists(copyright_path) else []
files_paras = [p for p in paras if "files" in p]
all_licenses = sorted({p["license"].split("\n")[0] for p in paras if "license" in p})


def license_for(srcpath):
    """Licence and copyright of the last matching Files: paragraph (DEP-5 rule)."""
    match = None
    for p in files_paras:
        pats = p["files"].split()
        if any(fnmatch.fnmatchcase(srcpath, pat) for pat in pats):
            match = p
    if match is None:  # not machine-readable, or no paragraph matched
        if manual_lic:  # read from the copyright file by hand (PACKAGES field 4/5)
            return manual_lic, manual_holders
        lic = "; ".join(all_licenses) or f"see /usr/share/doc/{pkg}/copyright"
        return lic, ""
    lic = match.get("license", "").split("\n")[0]
    return lic, "; ".join(x.strip() for x in match.get("copyright", "").split("\n") if x.strip())


def upstream_note(rel):
    """Plasma wallpapers carry author and licence in <name>/metadata.json,
    Palapeli puzzles in a <name>.desktop file beside the image."""
    desktop = os.path.join(root, imgdir, os.path.splitext(rel)[0] + ".desktop")
    if os.path.exists(desktop):
        keys = {}
        for line in open(desktop, encoding="utf-8", errors="replace"):
            k, _, v = line.strip().partition("=")
            if k.startswith("X-KDE-PluginInfo-") and v.strip():
                keys[k[len("X-KDE-PluginInfo-"):]] = v.strip()
        if keys.get("Author") or keys.get("License"):
            note = f"{os.path.basename(desktop)}: author {keys.get('Author', '?')}; License {keys.get('License', '?')}"
            return note + (f"; {keys['Website']}" if keys.get("Website") else "")
    meta = os.path.join(root, imgdir, rel.split("/")[0], "metadata.json")
    if "/" not in rel or not os.path.exists(meta):
        return ""
    try:
        kp = json.load(open(meta, encoding="utf-8")).get("KPlugin", {})
        authors = ", ".join(a.get("Name", "") for a in kp.get("Authors", []))
        return f"metadata.json: author {authors}; License {kp.get('License', '?')}"
    except (ValueError, OSError):
        return ""


done = skipped = 0
with open(rows_path, "a", encoding="utf-8") as rows:
    for line in sys.stdin:
        if not line.strip():
            continue
        rel, outname = line.rstrip("\n").split("\t")
        src = os.path.join(root, imgdir, rel)
        if not rel.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
            print(f"  skip {pkg}/{rel}: not jpg/png/webp", file=sys.stderr)
            skipped += 1
            continue
        if not os.path.exists(src):
            print(f"  skip {pkg}/{rel}: not in this package version", file=sys.stderr)
            skipped += 1
            continue
        out = os.path.join(dest, outname)
        if not (os.path.exists(out) and os.path.getsize(out) > 0):
            with Image.open(src) as im:
                im = ImageOps.exif_transpose(im)
                if min(im.size) < min_short:
                    print(f"  skip {pkg}/{rel}: {im.size} smaller than {min_short}px", file=sys.stderr)
                    skipped += 1
                    continue
                if im.mode in ("RGBA", "LA", "P", "PA"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(bg, im)
                im = im.convert("RGB")
                if max(im.size) > max_long:
                    im.thumbnail((max_long, max_long), Image.LANCZOS)
                tmp = out + ".part"
                im.save(tmp, "JPEG", quality=90)
                os.replace(tmp, out)
        lic, holders = license_for(srcprefix + rel)
        fields = [outname, pkg, version, lic, holders, upstream_note(rel), f"/{imgdir}/{rel}"]
        rows.write("\t".join(f.replace("\t", " ") for f in fields) + "\n")
        done += 1
print(f"  {pkg} {version}: {done} photos" + (f", {skipped} skipped" if skipped else ""), file=sys.stderr)
PY

if ((${#needed[@]})); then
    log "Downloading ${#needed[@]} package(s): ${needed[*]}"
    # apt-get (as root) downloads as the _apt user, who needs to be able to write here.
    chmod 0711 "$TMP"
    mkdir -p "$TMP/debs"
    chmod 0777 "$TMP/debs"
    if ! (cd "$TMP/debs" && apt-get download "${needed[@]}") >"$TMP/apt.log" 2>&1; then
        if grep -qiE "Unable to locate package|no installation candidate|Can't select|Failed to fetch|404" "$TMP/apt.log"; then
            log "apt-get download failed (package lists missing or stale); running apt-get update"
            if [[ $EUID -eq 0 ]]; then
                apt-get update >"$TMP/update.log" 2>&1 || { cat "$TMP/update.log" >&2; exit 1; }
            elif command -v sudo >/dev/null; then
                sudo apt-get update >"$TMP/update.log" 2>&1 || { cat "$TMP/update.log" >&2; exit 1; }
            else
                cat "$TMP/apt.log" >&2
                log "error: run 'apt-get update' as root, then run this script again"
                exit 1
            fi
            (cd "$TMP/debs" && apt-get download "${needed[@]}") >"$TMP/apt.log" 2>&1 \
                || { cat "$TMP/apt.log" >&2; exit 1; }
        else
            cat "$TMP/apt.log" >&2
            exit 1
        fi
    fi

    for entry in "${PACKAGES[@]}"; do
        IFS='|' read -r pkg imgdir srcprefix manual_lic manual_holders <<<"$entry"
        [[ " ${needed[*]} " == *" $pkg "* ]] || continue
        debs=("$TMP/debs/${pkg}"_*.deb)
        deb="${debs[0]}"
        [[ -f "$deb" ]] || { log "error: no .deb downloaded for $pkg"; exit 1; }
        version="$(dpkg-deb -f "$deb" Version)"
        root="$TMP/x/$pkg"
        mkdir -p "$root"
        dpkg-deb -x "$deb" "$root"
        while IFS= read -r rel; do
            [[ -n "$rel" ]] && printf '%s\t%s\n' "$rel" "$(out_name "$pkg" "$rel")"
        done < <(files_of "$pkg") |
            "$PYTHON" "$TMP/process.py" "$pkg" "$version" "$root" "$imgdir" "$srcprefix" \
                "$DEST_DIR" "$MIN_SHORT_SIDE" "$MAX_LONG_SIDE" "$TMP/rows.tsv" \
                "$manual_lic" "$manual_holders"
        rm -rf "$root" "$deb"  # keep the temporary disk use to one package at a time
    done
fi

# Merge the new rows into SOURCES.txt and keep the old rows of packages not
# downloaded this time. Drop rows whose image is gone.
"$PYTHON" - "$DEST_DIR" "$TMP/rows.tsv" <<'PY'
import os, sys
dest, rows_path = sys.argv[1:]
header = "file\tpackage\tversion\tlicense\tcopyright\tupstream_note\tpath_in_package"
sources = os.path.join(dest, "SOURCES.txt")
rows = {}
if os.path.exists(sources):
    for line in open(sources, encoding="utf-8"):
        if line.startswith("#") or line.startswith("file\t") or not line.strip():
            continue
        rows[line.split("\t", 1)[0]] = line.rstrip("\n")
for line in open(rows_path, encoding="utf-8"):
    if line.strip():
        rows[line.split("\t", 1)[0]] = line.rstrip("\n")
rows = {k: v for k, v in rows.items() if os.path.exists(os.path.join(dest, k))}
with open(sources + ".part", "w", encoding="utf-8") as fh:
    fh.write("# Photos taken from Debian packages by scripts/fetch_training_photos.sh.\n")
    fh.write("# license/copyright: the matching Files: paragraph of /usr/share/doc/PKG/copyright in the .deb.\n")
    fh.write(header + "\n")
    for k in sorted(rows):
        fh.write(rows[k] + "\n")
os.replace(sources + ".part", sources)
PY

n_photos=$(awk -F'\t' 'NR > 3 && $1 != "" { n++ } END { print n + 0 }' "$DEST_DIR/SOURCES.txt")
n_pkgs=$(awk -F'\t' 'NR > 3 && $2 != "" { print $2 }' "$DEST_DIR/SOURCES.txt" | sort -u | wc -l)
echo "fetch_training_photos: ${n_photos} photos from ${n_pkgs} packages in ${DEST_DIR} (downloaded ${#needed[@]} package(s), $((SECONDS - start_s))s)"
