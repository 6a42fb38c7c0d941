"""cnnvit: image-classification studies from CNNs to ViTs, on a small tested training core."""
from .config import Config, ConfigError
from .data import Dataset, DatasetError, load_dataset
from .models import create_model, list_models, register_model
from .run import Run, load_run
from .study import load_study, run_study, summary_table
from .train import RunConflict, TrainingDiverged, train

__all__ = ["Config", "ConfigError", "Dataset", "DatasetError", "load_dataset", "create_model",
           "list_models", "register_model", "Run", "load_run", "load_study", "run_study",
           "summary_table", "RunConflict", "TrainingDiverged", "train"]
__version__ = "0.1.0"
