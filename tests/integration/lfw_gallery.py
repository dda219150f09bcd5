"""A watchlist gallery of LFW people enrolled with the real pipeline, shared by the hot-path tests."""

import os

import cv2
import numpy as np

from appliance.matching.gallery import Gallery
from appliance.matching.service import MatchService


def lfw_match_service(pipeline, config, lfw_dir, watchlist, exclude=(), distractors=30):
    """A MatchService enrolled from the first photo of each watchlist person plus LFW distractors (not `exclude`)."""
    others = sorted(n for n in os.listdir(lfw_dir) if n not in [*watchlist, *exclude])[:distractors]
    ids, rows = [], []
    for name in [*watchlist, *others]:
        result = pipeline.enrol(cv2.imread(str(sorted((lfw_dir / name).glob("*.jpg"))[0])))
        if result.ok:
            ids.append(name)
            rows.append(result.embedding)
    return MatchService.for_embedder(config.matcher, pipeline.embedder_spec, Gallery(ids, np.stack(rows)),
                                     config.models.dir)
