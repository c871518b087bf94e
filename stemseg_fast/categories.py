"""Class names of the benchmarks and the official maps from image datasets' classes to theirs
(official: data/metainfo/coco.yaml, pascal_voc.yaml, youtube_vis_category_names.yaml).

A map is {source category id: target category id}; source classes it does not list are dropped
from the pseudo-clips (the official loaders keep only the classes their metainfo keeps). The
DAVIS maps are class-agnostic: every kept class becomes 1.

:func:`read_category_names` reads the ``categories`` list of an annotation file, or of the
``categories.json`` that ``infer`` writes beside its results.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from .benchmarks import canonical_name
from .io.files import PathLike, read_json

YOUTUBE_VIS_CATEGORIES = (
    "person",
    "giant_panda",
    "lizard",
    "parrot",
    "skateboard",
    "sedan",
    "ape",
    "dog",
    "snake",
    "monkey",
    "hand",
    "rabbit",
    "duck",
    "cat",
    "cow",
    "fish",
    "train",
    "horse",
    "turtle",
    "bear",
    "motorbike",
    "giraffe",
    "leopard",
    "fox",
    "deer",
    "owl",
    "surfboard",
    "airplane",
    "truck",
    "zebra",
    "tiger",
    "elephant",
    "snowboard",
    "boat",
    "shark",
    "mouse",
    "frog",
    "eagle",
    "earless_seal",
    "tennis_racket",
)
OVIS_CATEGORIES = (
    "Person",
    "Bird",
    "Cat",
    "Dog",
    "Horse",
    "Sheep",
    "Cow",
    "Elephant",
    "Bear",
    "Zebra",
    "Giraffe",
    "Poultry",
    "Giant_panda",
    "Lizard",
    "Parrot",
    "Monkey",
    "Rabbit",
    "Tiger",
    "Fish",
    "Turtle",
    "Bicycle",
    "Motorcycle",
    "Airplane",
    "Boat",
    "Vehical",
)

COCO_TO_YOUTUBE_VIS = {
    1: 1,
    2: 21,
    3: 6,
    4: 21,
    5: 28,
    7: 17,
    8: 29,
    9: 34,
    17: 14,
    18: 8,
    19: 18,
    21: 15,
    22: 32,
    23: 20,
    24: 30,
    25: 22,
    36: 33,
    41: 5,
    42: 27,
    43: 40,
}
VOC_TO_YOUTUBE_VIS = {1: 28, 4: 34, 7: 6, 8: 14, 10: 15, 12: 8, 13: 18, 14: 21, 15: 1, 19: 17}
COCO_DAVIS_CLASSES = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    27,
    34,
    35,
    36,
    37,
    38,
    39,
    41,
    42,
    43,
)
VOC_DAVIS_CLASSES = (1, 2, 3, 4, 6, 7, 8, 10, 12, 13, 14, 15, 17, 19)
# Not official (the OVIS challenge report names no map): COCO person, vehicles and animals to
# the OVIS class of the same name; car, bus and truck to OVIS "Vehical".
COCO_TO_OVIS = {
    1: 1,
    2: 21,
    3: 25,
    4: 22,
    5: 23,
    6: 25,
    8: 25,
    9: 24,
    16: 2,
    17: 3,
    18: 4,
    19: 5,
    20: 6,
    21: 7,
    22: 8,
    23: 9,
    24: 10,
    25: 11,
}

# name -> (map, names of the target classes by id - 1, or None for class-agnostic maps)
CATEGORY_MAPS = {
    "coco_to_youtube_vis": (COCO_TO_YOUTUBE_VIS, YOUTUBE_VIS_CATEGORIES),
    "voc_to_youtube_vis": (VOC_TO_YOUTUBE_VIS, YOUTUBE_VIS_CATEGORIES),
    "coco_to_ovis": (COCO_TO_OVIS, OVIS_CATEGORIES),
    "coco_davis": ({category: 1 for category in COCO_DAVIS_CLASSES}, None),
    "voc_davis": ({category: 1 for category in VOC_DAVIS_CLASSES}, None),
}


def resolve_category_map(
    value: Union[str, Mapping[int, int]],
) -> Tuple[Dict[int, int], Optional[Sequence[str]]]:
    """(map, target class names or None) of a map name or an explicit {id: id} mapping."""
    if isinstance(value, str):
        value = canonical_name(value)
        if value not in CATEGORY_MAPS:
            raise ValueError(
                f"category_map must be one of {sorted(CATEGORY_MAPS)} or a mapping, got {value!r}"
            )
        return CATEGORY_MAPS[value]
    return {int(k): int(v) for k, v in value.items()}, None


def check_target_names(
    target_names: Sequence[str], dataset_names: Mapping[int, str], where: str
) -> None:
    """The ids a named map targets must carry the same class names in the dataset trained on
    (``dataset_names``: {id: name} from its annotation file), compared case-insensitively."""
    for category_id, name in enumerate(target_names, start=1):
        found = dataset_names.get(category_id)
        if found is not None and found.lower() != name.lower():
            raise ValueError(
                f"{where}: the category map sends images to class {category_id} "
                f"{name!r}, but the annotations call class {category_id} {found!r}"
            )


def read_category_names(path: PathLike, what: str = "annotation file") -> Dict[int, str]:
    """``{category id: name}`` from a JSON file's ``categories`` list ({"id", "name"} entries),
    empty when it has none; a ``ValueError`` naming ``what`` and the entry for a malformed one."""
    dataset = read_json(path, what)
    categories = dataset.get("categories") if isinstance(dataset, dict) else None
    names = {}
    for position, category in enumerate(categories or []):
        if (
            not isinstance(category, dict)
            or isinstance(category.get("id"), bool)
            or not isinstance(category.get("id"), int)
        ):
            raise ValueError(f"{what} {path}: categories[{position}] needs an integer 'id'")
        names[category["id"]] = str(category.get("name", category["id"]))
    return names
