import pytest
from evaluation_builders import VideoDataset


@pytest.fixture
def dataset():
    """An empty YouTube-VIS dataset with categories 1 'person' and 2 'dog'."""
    return VideoDataset()
