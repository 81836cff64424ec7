"""lrfit: fit low-rank recurrent neural networks to recorded neural activity."""

from .errors import LrfitError
from .fitting import LowRankFit
from .models import FullRankRNN, LowRankRNN, load_model, save_model

__version__ = "0.1.0"

__all__ = ["FullRankRNN", "LowRankFit", "LowRankRNN", "LrfitError", "load_model", "save_model", "__version__"]
