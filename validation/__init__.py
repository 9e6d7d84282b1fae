"""validation: CompreSSM reproduced on real data, side by side with its baselines.

Run ``python -m validation demo`` (sequential digits, under 10 minutes on 2 CPU cores) or
``python -m validation run --help``. Modules: :mod:`.data` (offline data sets),
:mod:`.models` (the published block and classifier), :mod:`.presets`, :mod:`.losses`
(KD loss, differentiable Hankel nuclear norm), :mod:`.methods` (training loop and the
methods), :mod:`.runner`, :mod:`.analysis`, :mod:`.report`, :mod:`.cli`.
"""

from .errors import (ValidationError, ConfigError, UnknownDatasetError, UnknownPresetError,  # noqa: F401
                     MissingDependencyError, DatasetUnavailableError)
from .presets import PRESETS, METHODS, Preset, get_preset  # noqa: F401
