"""cnnvit: image-classification studies from CNNs to ViTs, on a small tested training core."""
import warnings

# huggingface_hub (imported by timm) picks tqdm.auto, which in a notebook without ipywidgets warns
# on import; our own progress bars are plain text on purpose (readable in papermill logs)
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
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
