"""cnnvit: image-classification studies from CNNs to ViTs, on a small tested training core.

Names below load on first use, so that ``python -m cnnvit data`` does not pay for torch.
"""
import importlib
import warnings

# huggingface_hub (imported by timm) picks tqdm.auto, which in a notebook without ipywidgets warns
# on import; our own progress bars are plain text on purpose (readable in papermill logs)
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

_EXPORTS = {
    "Config": "config", "ConfigError": "config", "CnnvitError": "config",
    "Dataset": "data", "DatasetError": "data", "load_dataset": "data",
    "create_model": "models", "list_models": "models", "register_model": "models",
    "Run": "run", "load_run": "run",
    "load_study": "study", "run_study": "study", "summary_table": "study",
    "RunConflict": "train", "TrainingDiverged": "train", "train_run": "train",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, "train" if name == "train_run" else name)
    raise AttributeError(f"module 'cnnvit' has no attribute {name!r}")
