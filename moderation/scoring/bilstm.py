"""The ``toxic-comment-classifier`` network (a Keras BiLSTM trained on Jigsaw's comments) in torch.

The PyPI package ships Keras 3 weights and a pickled Keras tokenizer, and requires
TensorFlow. ``convert_package`` reads them once, at build time, into plain files: the
weights as an ``.npz`` of arrays and the tokenizer as a JSON word index, so nothing is
unpickled and TensorFlow is never needed to score. The network is rebuilt here layer by
layer: ``Input(100) -> Embedding(20000, 50) -> Bidirectional(LSTM(50, return_sequences))
-> GlobalMaxPooling1D -> Dense(50, relu) -> Dense(6, sigmoid)``.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moderation.scoring.training_data import LABELS

if TYPE_CHECKING:
    import numpy as np
    import torch

PACKAGE = "toxic-comment-classifier"
PACKAGE_VERSION = "0.3.0"
WEIGHTS_FILE = "weights.npz"
TOKENIZER_FILE = "tokenizer.json"
MAX_LEN = 100
VOCAB_SIZE = 20_000
EMBEDDING_DIM = 50
UNITS = 50

# Array name -> shape, in Keras' layout; a file that differs is refused at load.
WEIGHT_SHAPES: dict[str, tuple[int, ...]] = {
    "embedding": (VOCAB_SIZE, EMBEDDING_DIM),
    "forward_kernel": (EMBEDDING_DIM, 4 * UNITS),
    "forward_recurrent": (UNITS, 4 * UNITS),
    "forward_bias": (4 * UNITS,),
    "backward_kernel": (EMBEDDING_DIM, 4 * UNITS),
    "backward_recurrent": (UNITS, 4 * UNITS),
    "backward_bias": (4 * UNITS,),
    "dense_kernel": (2 * UNITS, 50),
    "dense_bias": (50,),
    "output_kernel": (50, len(LABELS)),
    "output_bias": (len(LABELS),),
}
_H5_PATHS = {
    "embedding": "layers/embedding/vars/0",
    "forward_kernel": "layers/bidirectional/forward_layer/cell/vars/0",
    "forward_recurrent": "layers/bidirectional/forward_layer/cell/vars/1",
    "forward_bias": "layers/bidirectional/forward_layer/cell/vars/2",
    "backward_kernel": "layers/bidirectional/backward_layer/cell/vars/0",
    "backward_recurrent": "layers/bidirectional/backward_layer/cell/vars/1",
    "backward_bias": "layers/bidirectional/backward_layer/cell/vars/2",
    "dense_kernel": "layers/dense/vars/0",
    "dense_bias": "layers/dense/vars/1",
    "output_kernel": "layers/dense_1/vars/0",
    "output_bias": "layers/dense_1/vars/1",
}
_KERAS_TOKENIZER = ("keras.src.legacy.preprocessing.text", "Tokenizer")


class SignalError(RuntimeError):
    """A signal's files are missing or do not have the shape the network needs."""


# --- Conversion (build time) -------------------------------------------------------------


def convert_package(output_dir: Path) -> dict[str, Any]:
    """Write the installed package's weights and tokenizer as plain files; returns its facts."""
    import h5py
    import numpy as np

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise SignalError(
            f"{PACKAGE} is not installed; install it without its TensorFlow requirement: "
            f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
        ) from None
    model_dir = Path(str(dist.locate_file("toxic_classifier/model")))
    output_dir.mkdir(parents=True, exist_ok=True)
    with h5py.File(model_dir / "model.weights.h5", "r") as weights:
        arrays = {name: np.asarray(weights[path]) for name, path in _H5_PATHS.items()}
    check_shapes(arrays, source=str(model_dir / "model.weights.h5"))
    np.savez(output_dir / WEIGHTS_FILE, **arrays)
    tokenizer = read_keras_tokenizer((model_dir / "tokenizer.pickle").read_bytes())
    (output_dir / TOKENIZER_FILE).write_text(json.dumps(tokenizer), encoding="utf-8")
    return {"package": PACKAGE, "version": dist.version, "license": "MIT"}


class _TokenizerState:
    """Receives the pickled Keras tokenizer's attributes; no Keras code runs."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _TokenizerUnpickler(pickle.Unpickler):
    """Admits only the tokenizer class (as a plain stub) and the containers its state uses."""

    allowed: dict[tuple[str, str], Any] = {
        _KERAS_TOKENIZER: _TokenizerState,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "int"): int,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in the tokenizer") from None


def read_keras_tokenizer(data: bytes) -> dict[str, Any]:
    """The settings and word index of a pickled Keras ``Tokenizer``, as plain JSON values."""
    state = _TokenizerUnpickler(io.BytesIO(data)).load()
    num_words = state.num_words or VOCAB_SIZE
    return {
        "filters": state.filters,
        "lower": bool(state.lower),
        "split": state.split,
        "num_words": num_words,
        # Keras drops indices >= num_words, so only those words can ever matter.
        "word_index": {w: i for w, i in state.word_index.items() if i < num_words},
    }


def check_shapes(arrays: Any, *, source: str) -> None:
    """Refuse weights that are not the network's (a truncated or foreign file)."""
    for name, shape in WEIGHT_SHAPES.items():
        if name not in arrays:
            raise SignalError(f"{source}: weight {name!r} is missing")
        if tuple(arrays[name].shape) != shape:
            raise SignalError(
                f"{source}: weight {name!r} has shape {tuple(arrays[name].shape)}, expected {shape}"
            )


# --- Tokenizing (as Keras' texts_to_sequences and pad_sequences do) ----------------------


class WordIndex:
    """Keras ``texts_to_sequences`` then ``pad_sequences(maxlen=100)``: padded at the front."""

    def __init__(self, config: dict[str, Any]):
        self.table = str.maketrans(dict.fromkeys(config["filters"], config["split"]))
        self.lower = config["lower"]
        self.split = config["split"]
        self.num_words = int(config["num_words"])
        self.index: dict[str, int] = config["word_index"]

    def sequence(self, text: str) -> list[int]:
        """The word indices of a text, words outside the vocabulary dropped."""
        if self.lower:
            text = text.lower()
        words = [w for w in text.translate(self.table).split(self.split) if w]
        indices = (self.index.get(word) for word in words)
        return [i for i in indices if i is not None and i < self.num_words]

    def padded(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), 100)`` array: the last 100 indices of each text, zeros in front."""
        import numpy as np

        out = np.zeros((len(texts), MAX_LEN), dtype=np.int64)
        for row, text in enumerate(texts):
            sequence = self.sequence(text)[-MAX_LEN:]
            if sequence:
                out[row, MAX_LEN - len(sequence) :] = sequence
        return out


# --- The network -------------------------------------------------------------------------


def build_network(arrays: Any) -> torch.nn.Module:
    """The torch network with the Keras weights in place."""
    import torch
    from torch import nn

    class BiLSTMClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB_SIZE, EMBEDDING_DIM)
            self.lstm = nn.LSTM(EMBEDDING_DIM, UNITS, batch_first=True, bidirectional=True)
            self.dense = nn.Linear(2 * UNITS, 50)
            self.output = nn.Linear(50, len(LABELS))

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            # No mask, as in Keras: the front padding runs through the LSTM too.
            states, _ = self.lstm(self.embedding(ids))
            pooled = states.max(dim=1).values
            return torch.sigmoid(self.output(torch.relu(self.dense(pooled))))

    network = BiLSTMClassifier()
    tensor = lambda name: torch.from_numpy(arrays[name].astype("float32"))  # noqa: E731
    with torch.no_grad():
        network.embedding.weight.copy_(tensor("embedding"))
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            # Keras: kernel (in, 4u), gates i, f, c, o; torch: weight (4u, in), gates i, f, g, o.
            getattr(network.lstm, f"weight_ih_l0{suffix}").copy_(tensor(f"{direction}_kernel").T)
            getattr(network.lstm, f"weight_hh_l0{suffix}").copy_(tensor(f"{direction}_recurrent").T)
            # Keras has one bias per gate set, torch two that are added: keep one, zero the other.
            getattr(network.lstm, f"bias_ih_l0{suffix}").copy_(tensor(f"{direction}_bias"))
            getattr(network.lstm, f"bias_hh_l0{suffix}").zero_()
        network.dense.weight.copy_(tensor("dense_kernel").T)
        network.dense.bias.copy_(tensor("dense_bias"))
        network.output.weight.copy_(tensor("output_kernel").T)
        network.output.bias.copy_(tensor("output_bias"))
    return network.eval()


class BiLSTMSignal:
    """Six Jigsaw labels from the ported network, in a directory ``convert_package`` wrote."""

    name = "bilstm"
    labels = LABELS
    batch_size = 256

    def __init__(self, directory: Path, *, device: str = "cpu"):
        self.directory = Path(directory)
        self.device = device
        if device == "cuda":
            self.batch_size = 2048
        self._network: torch.nn.Module | None = None
        self._words: WordIndex | None = None

    def check(self) -> None:
        """Raise ``SignalError`` naming the file when the weights or tokenizer are unusable.

        Reads only numpy arrays and JSON: safe in a worker's parent process before it forks.
        """
        self._arrays()

    def _arrays(self) -> tuple[dict[str, Any], WordIndex]:
        import numpy as np

        weights_path = self.directory / WEIGHTS_FILE
        tokenizer_path = self.directory / TOKENIZER_FILE
        try:
            with np.load(weights_path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            words = WordIndex(json.loads(tokenizer_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SignalError(f"{self.name} signal unusable: {exc}") from exc
        check_shapes(arrays, source=str(weights_path))
        return arrays, words

    def _load(self) -> tuple[torch.nn.Module, WordIndex]:
        if self._network is None or self._words is None:
            arrays, words = self._arrays()
            network = build_network(arrays)
            if self.device == "cuda":
                network = network.to("cuda").half()
            self._network, self._words = network, words
        return self._network, self._words

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text."""
        import torch

        network, words = self._load()
        rows: list[dict[str, float]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                ids = torch.from_numpy(words.padded(texts[start : start + self.batch_size]))
                for values in network(ids.to(self.device)).float().cpu().tolist():
                    rows.append(dict(zip(LABELS, values, strict=True)))
        return rows
