"""Pseudo-clips from single images (section 5.4) and the optional photometric jitter, in
OpenCV (the official code uses imgaug, which no longer installs cleanly).

A pseudo-clip: the source image is flipped horizontally with p 0.5; frame 1 is the (flipped)
source; each other frame is an *independent* augmentation of the source:

* photometric, 1 or 2 (imgaug ``SomeOf((1, None))``, list order) of: brightness add
  DiscreteUniform(-40, 40); hue and saturation add DiscreteUniform(-5, 5) (one value for both,
  hue rescaled to OpenCV's 0..179 range);
* geometric, shared by image and masks: imgaug-style ``PerspectiveTransform(0.08)`` (corners
  jittered inwards by |N(0, 0.08)| of the size, the quadrilateral stretched back to the full
  frame) followed by an affine rotation U(-12, 12) degrees (COCO; 10 for VOC and Mapillary)
  about the centre and a translation of t * (W, H) with one t ~ U(-0.1, 0.1) for both axes
  (imgaug's tuple semantics), scale 1.0;
* motion blur with p 0.25, kernel 9 or 11, on the image only.

The frames are then randomly permuted. The two geometric steps are composed into one
homography and applied once (imgaug warps twice), bilinear for the image and nearest for the
masks with the same matrix, so masks stay aligned with the image. The image is warped in
float32 with the Caffe mean as border value: pixels outside the source become exactly 0 after
normalisation, the official "invalid points" rule; pixels on the border blend with it.
Masks are bit-packed (8 instances per byte, the ignore mask as one more bit) so overlapping
instances survive the warp exactly; the official code condenses them to one label map first
(later instance wins), which differs only where source masks overlap.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR

from .samples import RawClip


@dataclass(frozen=True)
class PseudoClipAugmentation:
    """Parameters of the per-frame augmentation (defaults: the COCO loader's)."""

    brightness: int = 40
    hue_saturation: int = 5
    perspective_scale: float = 0.08
    rotation_degrees: float = 12.0
    translate_fraction: float = 0.1
    motion_blur_probability: float = 0.25
    motion_blur_kernels: tuple = (9, 11)
    flip_probability: float = 0.5


COCO_AUGMENTATION = PseudoClipAugmentation()
VOC_AUGMENTATION = PseudoClipAugmentation(rotation_degrees=10.0)
MAPILLARY_AUGMENTATION = PseudoClipAugmentation(rotation_degrees=10.0, motion_blur_probability=0.0)


def adjust_brightness(image: np.ndarray, value: float) -> np.ndarray:
    """uint8 image + value, saturated."""
    return np.clip(image.astype(np.int16) + int(value), 0, 255).astype(np.uint8)


def adjust_hue_saturation(image: np.ndarray, value: float) -> np.ndarray:
    """Adds ``value`` (imgaug units, hue range 255) to hue (cyclic) and saturation (saturated)
    of a BGR uint8 image."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(round(value * 180 / 255))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + int(value), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def photometric_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    augmentation: PseudoClipAugmentation = COCO_AUGMENTATION,
) -> np.ndarray:
    """imgaug ``SomeOf((1, None), [Add, AddToHueAndSaturation])`` on a uint8 BGR image."""
    count = int(rng.integers(1, 3))
    chosen = sorted(rng.choice(2, size=count, replace=False).tolist())
    for which in chosen:
        if which == 0:
            image = adjust_brightness(
                image, rng.integers(-augmentation.brightness, augmentation.brightness + 1)
            )
        else:
            image = adjust_hue_saturation(
                image, rng.integers(-augmentation.hue_saturation, augmentation.hue_saturation + 1)
            )
    return image


def random_homography(
    height: int,
    width: int,
    rng: np.random.Generator,
    augmentation: PseudoClipAugmentation = COCO_AUGMENTATION,
) -> np.ndarray:
    """3x3 float64 matrix: perspective jitter, then rotation about the centre and translation."""
    jitter = np.mod(np.abs(rng.normal(0.0, augmentation.perspective_scale, (4, 2))), 1.0)
    jitter *= (width, height)
    source = np.float32(
        [
            [jitter[0, 0], jitter[0, 1]],
            [width - jitter[1, 0], jitter[1, 1]],
            [width - jitter[2, 0], height - jitter[2, 1]],
            [jitter[3, 0], height - jitter[3, 1]],
        ]
    )
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    perspective = cv2.getPerspectiveTransform(source, target)
    angle = rng.uniform(-augmentation.rotation_degrees, augmentation.rotation_degrees)
    shift = rng.uniform(-augmentation.translate_fraction, augmentation.translate_fraction)
    affine = np.eye(3)
    affine[:2] = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    affine[0, 2] += shift * width
    affine[1, 2] += shift * height
    return affine @ perspective


def warp_image(image: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Bilinear warp of a BGR image to float32, outside pixels = the mean colour."""
    height, width = image.shape[:2]
    return cv2.warpPerspective(
        image.astype(np.float32),
        homography,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=IMAGE_MEAN_BGR,
    )


def warp_masks(masks: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Nearest-neighbour warp of [N, H, W] {0,1} masks with the matrix of :func:`warp_image`,
    exact for overlapping masks (bit-packed, 32 masks per OpenCV call)."""
    count, height, width = masks.shape
    if count == 0:
        return masks.copy()
    packed = np.packbits(masks.astype(bool), axis=0)  # [ceil(N/8), H, W]
    warped = np.empty_like(packed)
    for start in range(0, packed.shape[0], 4):  # OpenCV warps at most 4 channels at once
        group = np.ascontiguousarray(packed[start : start + 4].transpose(1, 2, 0))
        result = cv2.warpPerspective(
            group,
            homography,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        warped[start : start + 4] = result.reshape(height, width, -1).transpose(2, 0, 1)
    return np.unpackbits(warped, axis=0, count=count).astype(np.uint8)


def motion_blur_kernel(size: int, angle_degrees: float, direction: float) -> np.ndarray:
    """imgaug ``MotionBlur`` kernel: a line through the centre with weights ramping from
    (direction+1)/2 to 1-(direction+1)/2, rotated by the angle, normalised to sum 1."""
    kernel = np.zeros((size, size), np.float32)
    start = (direction + 1.0) / 2.0
    kernel[:, size // 2] = np.linspace(start, 1.0 - start, num=size)
    rotation = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle_degrees, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    total = kernel.sum()
    if total <= 0:  # direction ±1 leaves one end only; never all zero after rotation
        kernel[size // 2, size // 2], total = 1.0, 1.0
    return kernel / total


def augment_frame(
    image: np.ndarray,
    masks: np.ndarray,
    rng: np.random.Generator,
    augmentation: PseudoClipAugmentation = COCO_AUGMENTATION,
) -> Tuple[np.ndarray, np.ndarray]:
    """One independent augmentation of the source.

    Args:
        image: [H, W, 3] uint8 BGR.
        masks: [N, H, W] uint8 {0,1} (instances, then the ignore mask).
    Returns:
        image [H, W, 3] float32 (0..255, outside = mean colour), masks [N, H, W] uint8.
    """
    height, width = image.shape[:2]
    image = photometric_jitter(image, rng, augmentation)
    homography = random_homography(height, width, rng, augmentation)
    warped = warp_image(image, homography)
    if rng.random() < augmentation.motion_blur_probability:
        size = int(rng.choice(augmentation.motion_blur_kernels))
        kernel = motion_blur_kernel(size, rng.uniform(0, 360), rng.uniform(-1, 1))
        warped = cv2.filter2D(warped, -1, kernel)
    return warped, warp_masks(masks, homography)


def make_pseudo_clip(
    image: np.ndarray,
    masks: np.ndarray,
    ignore: np.ndarray,
    categories: Sequence[int],
    clip_length: int,
    rng: np.random.Generator,
    augmentation: PseudoClipAugmentation = COCO_AUGMENTATION,
    name: str = "",
) -> RawClip:
    """A :class:`RawClip` of ``clip_length`` frames from one image.

    Args:
        image: [H, W, 3] uint8 BGR; masks: [I, H, W] uint8; ignore: [H, W] uint8.
        rng: numpy Generator.
    """
    if rng.random() < augmentation.flip_probability:
        image, masks, ignore = image[:, ::-1], masks[:, :, ::-1], ignore[:, ::-1]
    planes = np.concatenate([masks, ignore[None]], 0)  # [I+1, H, W]
    frames, frame_planes = [image.astype(np.float32)], [np.ascontiguousarray(planes)]
    for _ in range(clip_length - 1):
        warped_image, warped_planes = augment_frame(
            np.ascontiguousarray(image), planes, rng, augmentation
        )
        frames.append(warped_image)
        frame_planes.append(warped_planes)
    order = rng.permutation(clip_length)
    images = np.stack([frames[t] for t in order])  # [T, H, W, 3]
    planes = np.stack([frame_planes[t] for t in order], 1)  # [I+1, T, H, W]
    return RawClip(
        images=images, masks=planes[:-1], ignore=planes[-1], categories=tuple(categories), name=name
    )
