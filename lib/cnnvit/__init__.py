"""cnnvit: image-classification studies from CNNs to ViTs, on a small tested training core.

Names below load on first use, so that ``python -m cnnvit data`` does not pay for torch.
"""
import importlib
import sys
import warnings

# huggingface_hub (imported by timm) picks tqdm.auto, which in a notebook without ipywidgets warns
# on import; our own progress bars are plain text on purpose (readable in papermill logs)
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

_EXPORTS = {
    "Config": "config", "ConfigError": "errors", "CnnvitError": "errors", "DatasetError": "errors",
    "RunConflict": "errors", "TrainingDiverged": "errors",
    "Dataset": "datasets", "load_dataset": "datasets", "register_dataset": "datasets",
    "create_model": "models", "list_models": "models", "register_model": "models",
    "Run": "training", "load_run": "training", "train_run": "training",
    "load_study": "studies", "run_study": "studies", "summary_table": "studies",
}
__all__ = sorted(_EXPORTS)


def _short_user_errors_in_ipython() -> None:
    """In a notebook, a user error (CnnvitError) shows as its one-line message, not a traceback;
    the cell still fails, so papermill and ``make report`` see the failure."""
    if "IPython" not in sys.modules:  # not a notebook or IPython shell: nothing to do
        return
    from IPython import get_ipython

    from .errors import CnnvitError

    def show(shell, etype, value, tb, tb_offset=None) -> list[str]:
        stb = [f"error: {value}"]
        shell._showtraceback(etype, value, stb)  # the error output a notebook shows and papermill reads
        return stb

    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CnnvitError,), show)


_short_user_errors_in_ipython()
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, "train" if name == "train_run" else name)
    raise AttributeError(f"module 'cnnvit' has no attribute {name!r}")
