"""COCO instance-segmentation JSON: the images that become pseudo-clips (section 5.4).

``images`` [{id, file_name, height, width}], ``annotations`` [{image_id, category_id, iscrowd,
segmentation: polygons or RLE, area}], ``categories``. Crowd annotations become the ignore region.
"""

import os
from typing import Dict, List, Mapping, Optional, Tuple, Union

from stemseg_fast.io.files import PathLike, read_json
from stemseg_fast.io.rle import segmentation_to_rle

from .masks import check_images, merge_rles, rle_area
from .samples import ImageSample


def read_coco(
    annotation_file: PathLike,
    image_root: PathLike,
    *,
    category_map: Optional[Union[str, Mapping[int, int]]] = None,
    min_area: int = 0,
    check_sizes: str = "first",
) -> Tuple[List[ImageSample], Dict[int, str]]:
    """Reads COCO instance annotations.

    Args:
        annotation_file: path of the JSON file.
        image_root: folder that ``file_name`` is relative to.
        category_map: optional {source category id: target id}; instances of unmapped categories
            are dropped (treated as background), as the official loaders keep only the classes
            their metainfo lists. None keeps every category as it is.
        min_area: instances with fewer pixels are dropped (the official VOC loader uses 50).
        check_sizes: "first" checks the size of every image here (one header each), "none"
            only their existence. Images are also checked when loaded.
    Returns:
        (images: list[ImageSample], category_names: dict[int, str]), images without any kept
        instance left out.
    """
    data = read_json(annotation_file, "annotation file")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{annotation_file}: missing key '{key}' (expected COCO format)")
    category_names = {int(c["id"]): c.get("name", str(c["id"])) for c in data["categories"]}
    if category_map is not None:
        category_map = {int(k): int(v) for k, v in category_map.items()}
    by_image = {}
    for annotation in data["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)

    images = []
    for image in data["images"]:
        height, width = int(image["height"]), int(image["width"])
        categories, rles, crowds = [], [], []
        for annotation in by_image.get(image["id"], []):
            where = f"{annotation_file}: annotation {annotation.get('id')} of image {image['id']}"
            rle = segmentation_to_rle(
                annotation.get("segmentation"), height, width, where, skip_degenerate=True
            )
            if rle is None:
                continue
            if annotation.get("iscrowd", 0):
                crowds.append(rle)
                continue
            category = int(annotation["category_id"])
            if category_map is not None:
                if category not in category_map:
                    continue
                category = category_map[category]
            if rle_area(rle) < max(min_area, 1):
                continue
            categories.append(category)
            rles.append(rle)
        if not categories:
            continue
        path = os.path.join(image_root, image["file_name"])
        check_images(
            [path],
            height,
            width,
            annotation_file=annotation_file,
            check_sizes="first" if check_sizes in ("first", "all") else "none",
        )
        images.append(
            ImageSample(
                name=str(image["file_name"]),
                path=path,
                height=height,
                width=width,
                categories=tuple(categories),
                segmentations=tuple(rles),
                ignore=merge_rles(crowds),
            )
        )
    if not images:
        raise ValueError(f"{annotation_file}: no image with a (kept) annotated instance")
    if category_map is not None:
        category_names = {
            target: category_names.get(source, str(target))
            for source, target in category_map.items()
        }
    return images, category_names
