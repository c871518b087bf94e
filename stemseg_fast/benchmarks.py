"""The benchmarks, each with one spelling used everywhere: presets, output formats, selection
rules, metrics and official checkpoint names.

Earlier versions also wrote ``ytvis``, ``kitti`` and ``mots`` (and ``coco_to_ytvis``-style
class map names); :func:`canonical_name` still reads them (command lines, saved checkpoints,
training configs) and nothing writes them.
"""

YOUTUBE_VIS = "youtube_vis"
OVIS = "ovis"  # YouTube-VIS's formats and rule, its own data and metric (occlusion levels)
DAVIS = "davis"
KITTI_MOTS = "kitti_mots"
BENCHMARKS = (YOUTUBE_VIS, OVIS, DAVIS, KITTI_MOTS)

FORMER_SPELLINGS = {
    "ytvis": YOUTUBE_VIS,
    "kitti": KITTI_MOTS,
    "mots": KITTI_MOTS,
    # the class maps of training configs, named after their target benchmark
    "coco_to_ytvis": "coco_to_youtube_vis",
    "voc_to_ytvis": "voc_to_youtube_vis",
}


def canonical_name(name: str) -> str:
    """``name`` with a former spelling of a benchmark replaced by today's; anything else as it
    is (the caller checks it against its choices)."""
    return FORMER_SPELLINGS.get(name, name) if isinstance(name, str) else name
