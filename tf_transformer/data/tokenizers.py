"""Tokenizers: text ↔ token ids, with the reserved ids every model here relies on.

Two tokenizers:

- `SubwordTokenizer`: WordPiece (the subword scheme of BERT) on top of
  tensorflow-text's `FastWordpieceTokenizer`, with a vocabulary trained on the
  machine by `train_tokenizer` (tensorflow-text's WordPiece learner, the one
  keras_nlp's `compute_word_piece_vocabulary` wraps).
  It is a `tf.Module`: put it on a module you export with
  `tf.saved_model.save` and the SavedModel carries it; `tokenize` and
  `detokenize` work after `tf.saved_model.load` with only tensorflow and
  tensorflow_text imported.
- `word_level_vectorizer`: a Keras `TextVectorization` layer with one id per
  whole word, the tokenizer of the first lesson.

Reserved ids, the same in every vocabulary of the project:
`[PAD]=0, [UNK]=1, [START]=2, [END]=3` frame and pad sequences;
`[CLS]=4, [SEP]=5, [MASK]=6` serve the encoder-only models (a classifier
reads the `[CLS]` position, masked-language-model pretraining hides tokens
behind `[MASK]`, `[SEP]` separates two segments). `SubwordTokenizer`
vocabularies start with all seven. Tokenizers saved by earlier versions
(`format_version` 1) reserve only the first four; they still load and
translate, and asking them for `[CLS]`, `[SEP]` or `[MASK]` raises an error
that says to retrain. `word_level_vectorizer` (lesson 01's tokenizer, which
never masks) reserves only the four framing ids.

Canonical text (`normalize`)
----------------------------
Tokenizing forgets some details of a string (case, runs of spaces, the space
before a comma). `normalize` says exactly which: `detokenize(tokenize(s))`
equals `normalize(s)` whenever every character of `s` was seen when the
vocabulary was trained. The rules, in order:

1. Invalid UTF-8 bytes become U+FFFD; Unicode NFKC normalization (a
   no-break space becomes a space, "ﬁ" becomes "fi", accents are composed).
2. Lowercase (unless `lowercase=False`).
3. Every run of whitespace becomes one space; control and format
   characters (e.g. zero-width spaces) are dropped; leading and trailing
   spaces are removed.
4. The text is cut into words: a word is a run of letters, digits and
   combining marks; every other character (punctuation, symbols) is a token
   of its own.
5. The words are joined with one space, except that no space surrounds
   `- ' ’ / ‐`, none comes before `, . ; : ! ? ) ] } %`, and none comes after
   `( [ { ¿ ¡`.

So `"  Sunday ,November 22 , 2026"` normalizes to
`"sunday, november 22, 2026"` and `"quatre - vingts"` to `"quatre-vingts"`.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, START_ID, END_ID, CLS_ID, SEP_ID, MASK_ID = range(7)
# What vocabularies of format_version 1 reserve: the ids that never change.
FRAMING_TOKENS = RESERVED_TOKENS[:4]

SUFFIX_INDICATOR = "##"
_MAX_BYTES_PER_WORD = 100  # longer words become [UNK]
_VOCABULARY_FILE = "vocabulary.txt"
_CONFIG_FILE = "tokenizer.json"
_FORMAT = "tf_transformer.SubwordTokenizer"
# format_version 1 reserved only FRAMING_TOKENS, version 2 all RESERVED_TOKENS.
_RESERVED_BY_VERSION = {1: FRAMING_TOKENS, 2: RESERVED_TOKENS}

# One character that is not part of a word: punctuation, symbols, U+FFFD, ...
_NON_WORD_CHARACTER = r"[^\p{L}\p{N}\p{M}\s]"
_ATTACHED_BOTH_SIDES = "-'’/‐"
_ATTACHED_TO_PREVIOUS = r",.;:!?)\]}%"
_ATTACHED_TO_NEXT = r"(\[{¿¡"


# --------------------------------------------------------------------------
# Canonical text, in TensorFlow ops (also used inside exported graphs)


def _clean(strings: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """Rules 1-3 of the module docstring, element-wise on a string tensor."""
    strings = tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    strings = tf_text.normalize_utf8(strings, "NFKC")
    if lowercase:
        strings = tf.strings.lower(strings, encoding="utf-8")
    strings = tf.strings.regex_replace(strings, r"[\s\p{Z}]+", " ")
    strings = tf.strings.regex_replace(strings, r"[\p{Cc}\p{Cf}]", "")
    return tf.strings.strip(strings)


def _split_words(strings: tf.Tensor) -> tf.RaggedTensor:
    """Rule 4: (batch,) cleaned strings → (batch, words) ragged strings."""
    return tf_text.regex_split(
        strings,
        delim_regex_pattern=rf" |{_NON_WORD_CHARACTER}",
        keep_delim_regex_pattern=_NON_WORD_CHARACTER,
    )


def _attach_punctuation(text: tf.Tensor) -> tf.Tensor:
    """Rule 5, on words already joined by single spaces."""
    text = tf.strings.regex_replace(text, f" ?([{_ATTACHED_BOTH_SIDES}]) ?", r"\1")
    text = tf.strings.regex_replace(text, f" ([{_ATTACHED_TO_PREVIOUS}])", r"\1")
    return tf.strings.regex_replace(text, f"([{_ATTACHED_TO_NEXT}]) ", r"\1")


def _join_words(words: tf.RaggedTensor) -> tf.Tensor:
    return _attach_punctuation(tf.strings.reduce_join(words, axis=-1, separator=" "))


def _normalize_tensor(strings: tf.Tensor, lowercase: bool = True) -> tf.Tensor:
    flat = tf.reshape(strings, [-1])
    return tf.reshape(
        _join_words(_split_words(_clean(flat, lowercase))), tf.shape(strings)
    )


def _as_string_tensor(argument: str, value) -> tf.Tensor:
    """Converts str / bytes / sequences / arrays / tensors to a tf.string tensor.

    Raises a TypeError naming `argument` for anything that is not text.
    """
    if isinstance(value, tf.RaggedTensor):
        raise TypeError(
            f"`{argument}` must be strings (a str, a list of str or a 1-D "
            f"tf.string tensor), not a RaggedTensor. Received: {argument}={value!r}"
        )
    if isinstance(value, (tf.Tensor, tf.Variable)):
        if value.dtype != tf.string:
            raise TypeError(
                f"`{argument}` must be strings, received a tensor of dtype "
                f"{value.dtype.name}. Received: {argument}={value!r}"
            )
        return tf.convert_to_tensor(value)
    if isinstance(value, (str, bytes)):
        return tf.constant(value)
    if not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"`{argument}` must be strings (a str, a list of str or a 1-D "
            f"tf.string tensor). Received: {argument}={value!r} "
            f"(type {type(value).__name__})"
        )
    bad = next(
        (item for item in _leaves(value) if not isinstance(item, (str, bytes))), None
    )
    if bad is not None:
        raise TypeError(
            f"`{argument}` must contain only strings; found {bad!r} "
            f"(type {type(bad).__name__}). Received: {argument}={value!r}"
        )
    try:
        return tf.constant(value, dtype=tf.string)
    except ValueError as error:  # nested lists of different lengths
        raise ValueError(
            f"`{argument}` must be a string or a 1-D batch of strings. "
            f"Received: {argument}={value!r}"
        ) from error


def _leaves(value):
    if isinstance(value, np.ndarray):
        yield from value.ravel().tolist()
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def normalize(text, lowercase: bool = True):
    """The canonical form of a text: what `detokenize(tokenize(text))` returns.

    See the module docstring for the rules.

    Args:
        text: a `str`, a list of `str`, or a `tf.string` tensor of any shape.
        lowercase: whether to lowercase. Defaults to `True`, like
            `SubwordTokenizer`.

    Returns:
        The same kind of value as `text`: a `str`, a list of `str`, or a
        `tf.string` tensor of the same shape.

    Example:

    >>> normalize("  Sunday ,November 22 , 2026")
    'sunday, november 22, 2026'
    """
    tensor = _as_string_tensor("text", text)
    result = _normalize_tensor(tensor, lowercase)
    if isinstance(text, (tf.Tensor, tf.Variable)):
        return result
    if isinstance(text, (str, bytes)):
        return result.numpy().decode("utf-8")
    return [item.decode("utf-8") for item in result.numpy().ravel().tolist()]


# --------------------------------------------------------------------------
# Subword tokenizer


def _check_vocabulary(
    vocabulary, where: str, reserved: tuple[str, ...] = RESERVED_TOKENS
) -> list[str]:
    """A valid vocabulary as a list of str, or a ValueError/TypeError."""
    if isinstance(vocabulary, (str, bytes)) or not isinstance(
        vocabulary, (Sequence, np.ndarray)
    ):
        raise TypeError(
            f"{where} must be a list of str tokens. "
            f"Received: {type(vocabulary).__name__}"
        )
    tokens = []
    for token in vocabulary:
        if isinstance(token, bytes):
            token = token.decode("utf-8")
        if not isinstance(token, str):
            raise TypeError(
                f"{where} must contain only str tokens; found {token!r} "
                f"(type {type(token).__name__})"
            )
        tokens.append(token)
    if tuple(tokens[: len(reserved)]) != reserved:
        raise ValueError(
            f"{where} must start with the reserved tokens {list(reserved)}. "
            f"Received first tokens: {tokens[: len(reserved)]}"
        )
    bad = [token for token in tokens if not token or token != token.strip()]
    bad += [token for token in tokens if any(c.isspace() for c in token)]
    if bad:
        raise ValueError(
            f"{where} has empty tokens or tokens with whitespace: {bad[:5]!r}"
        )
    if len(set(tokens)) != len(tokens):
        seen, duplicates = set(), []
        for token in tokens:
            if token in seen:
                duplicates.append(token)
            seen.add(token)
        raise ValueError(f"{where} has duplicate tokens: {duplicates[:5]!r}")
    return tokens


# The parts of tokenize/detokenize that do not depend on the vocabulary are
# traced once per process and shared by every tokenizer: tracing ragged and
# regex ops costs about a second, which each new tokenizer would pay again.
# None of these functions branches on tensor values, so they skip AutoGraph,
# whose source conversion would add seconds to the first call.
_WORDS = {
    lowercase: tf.function(
        lambda strings, lowercase=lowercase: _split_words(_clean(strings, lowercase)),
        input_signature=[tf.TensorSpec([None], tf.string)],
        autograph=False,
    )
    for lowercase in (True, False)
}


@tf.function(
    input_signature=[tf.RaggedTensorSpec([None, None, None], tf.int32, 2)],
    autograph=False,
)
def _frame(pieces):
    """(batch, words, pieces) ids → (batch, tokens) ids framed by START/END."""
    ids = pieces.merge_dims(-2, -1)
    frame = tf.ones([ids.nrows(), 1], dtype=tf.int32)
    return tf.concat(
        [
            tf.RaggedTensor.from_tensor(frame * START_ID),
            ids,
            tf.RaggedTensor.from_tensor(frame * END_ID),
        ],
        axis=1,
    )


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.string),
    ],
    autograph=False,
)
def _join_pieces(token_ids, vocabulary):
    """(batch, length) ids → (batch,) canonical text."""
    size = tf.shape(vocabulary, out_type=tf.int32)[0]
    token_ids = tf.where((token_ids < 0) | (token_ids >= size), UNK_ID, token_ids)
    # Everything from the first [END] on is ignored.
    before_end = tf.math.cumsum(tf.cast(token_ids == END_ID, tf.int32), axis=1)
    keep = (before_end == 0) & (token_ids != PAD_ID) & (token_ids != START_ID)
    pieces = tf.ragged.boolean_mask(tf.gather(vocabulary, token_ids), keep)
    text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, f"(?:^| ){SUFFIX_INDICATOR}", "")
    return _attach_punctuation(text)


class SubwordTokenizer(tf.Module):
    """WordPiece tokenizer: text → int32 token ids framed by [START] … [END].

    Text is first put in canonical form (see `normalize`), cut into words, and
    each word into the longest vocabulary pieces, left to right; a piece that
    continues a word is spelled with a leading `##` in the vocabulary. A word
    that cannot be spelled with the vocabulary (an unseen character, or longer
    than 100 bytes) becomes `[UNK]`; nothing raises on odd text.

    Ids are int32. `tokenize` returns a `tf.RaggedTensor` (one row per text,
    no padding); `make_batches` pads and truncates. `detokenize` accepts
    padded or ragged ids of either integer dtype, skips `[PAD]` and
    `[START]`, stops at the first `[END]`, glues `##` pieces back into words
    and spaces punctuation as `normalize` does.

    The tokenizer is a `tf.Module`. Assign it to a module you export with
    `tf.saved_model.save`; the reloaded object has `tokenize(strings)`
    (1-D `tf.string` → ragged int32) and `detokenize(token_ids)` (2-D int32 →
    1-D `tf.string`) as plain TensorFlow functions.

    Args:
        vocabulary: list of str tokens, starting with `RESERVED_TOKENS`.
        lowercase: whether text is lowercased. Defaults to `True`.
        name: optional module name.

    Attributes:
        reserved_tokens: the reserved tokens the vocabulary starts with:
            `RESERVED_TOKENS`, or `FRAMING_TOKENS` for a tokenizer of
            format_version 1 read by `load`.

    Example:

    >>> tokenizer = train_tokenizer(["vingt et un", "quatre-vingts"], 100)
    >>> ids = tokenizer.tokenize("Quatre-vingt et un")   # [2, ..., 3]
    >>> tokenizer.detokenize(ids)
    <tf.Tensor: shape=(), dtype=string, numpy=b'quatre-vingt et un'>
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        *,
        lowercase: bool = True,
        name: str | None = None,
        _reserved_tokens: tuple[str, ...] = RESERVED_TOKENS,
    ):
        super().__init__(name=name)
        tokens = _check_vocabulary(vocabulary, "`vocabulary`", _reserved_tokens)
        self.reserved_tokens = _reserved_tokens
        if not isinstance(lowercase, bool):
            raise TypeError(
                f"`lowercase` must be a bool. Received: lowercase={lowercase!r}"
            )
        self.lowercase = lowercase
        self._tokens = tuple(tokens)
        self.vocabulary = tf.Variable(
            tokens, dtype=tf.string, trainable=False, name="vocabulary"
        )
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=tokens,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=RESERVED_TOKENS[UNK_ID],
            no_pretokenization=True,
        )

    # ---- vocabulary

    @property
    def vocabulary_size(self) -> int:
        """Number of tokens, reserved ones included (the model's vocab_size)."""
        return len(self._tokens)

    def get_vocabulary(self) -> list[str]:
        """The tokens, in id order."""
        return list(self._tokens)

    def id_to_token(self, token_id: int) -> str:
        """The token of one id."""
        if not 0 <= int(token_id) < len(self._tokens):
            raise ValueError(
                f"`token_id` must be in [0, {len(self._tokens)}). "
                f"Received: token_id={token_id!r}"
            )
        return self._tokens[int(token_id)]

    def token_to_id(self, token: str) -> int:
        """The id of one token, `UNK_ID` if it is not in the vocabulary.

        Raises:
            ValueError: `token` is `[CLS]`, `[SEP]` or `[MASK]` and this
                tokenizer, saved by an earlier version, does not reserve it.
        """
        try:
            return self._tokens.index(token)
        except ValueError:
            if token in RESERVED_TOKENS:
                raise ValueError(
                    f"This tokenizer has no {token} token: it was saved with "
                    "format_version 1, whose vocabulary reserves only "
                    f"{list(FRAMING_TOKENS)}. Train a new one with "
                    f"`train_tokenizer` to get {list(RESERVED_TOKENS[4:])}. "
                    f"Received: token={token!r}"
                ) from None
            return UNK_ID

    # ---- graph functions (saved in SavedModels under `tokenize`/`detokenize`)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="strings")],
        autograph=False,
    )
    def _tokenize_batch(self, strings):
        words = _WORDS[self.lowercase](strings)  # (batch, words)
        pieces = self._wordpiece.tokenize(words)  # (batch, words, pieces)
        return _frame(pieces)

    @tf.function(
        input_signature=[tf.TensorSpec([None, None], tf.int32, name="token_ids")],
        autograph=False,
    )
    def _detokenize_batch(self, token_ids):
        return _join_pieces(token_ids, tf.convert_to_tensor(self.vocabulary))

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # Export the graph functions under the public names, so that a reloaded
        # SavedModel reads `loaded.tokenizer.tokenize(...)` like this class.
        # (Keras layers customise their SavedModel children the same way.)
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            children["tokenize"] = children.pop("_tokenize_batch")
            children["detokenize"] = children.pop("_detokenize_batch")
        return children

    # ---- public API

    def tokenize(self, strings):
        """Text → token ids `[START] … [END]`.

        Args:
            strings: a `str`, a list of `str`, or a scalar or 1-D `tf.string`
                tensor (eager or symbolic).

        Returns:
            For one string, a 1-D int32 tensor. For a batch, a `tf.RaggedTensor`
            of int32 ids, shape `(batch, None)`.

        Raises:
            TypeError: `strings` is not text (numbers, None, ...).
            ValueError: `strings` has rank 2 or more.
        """
        tensor = _as_string_tensor("strings", strings)
        rank = tensor.shape.rank
        if rank == 0:
            return self._tokenize_batch(tensor[tf.newaxis])[0]
        if rank == 1:
            return self._tokenize_batch(tensor)
        raise ValueError(
            "`strings` must be a string or a 1-D batch of strings. "
            f"Received: strings with shape {tensor.shape}"
        )

    def detokenize(self, token_ids):
        """Token ids → text in canonical form (see `normalize`).

        Args:
            token_ids: ids as a list, NumPy array, tensor or `tf.RaggedTensor`
                of int32 or int64; 1-D for one sequence or 2-D for a batch.
                Out-of-range ids read as `[UNK]`.

        Returns:
            A scalar `tf.string` tensor for 1-D input, a 1-D one for a batch.

        Raises:
            TypeError: the ids are not integers.
            ValueError: the ids have rank 0 or 3+.
        """
        if isinstance(token_ids, tf.RaggedTensor):
            token_ids = token_ids.to_tensor(PAD_ID)
        elif not isinstance(token_ids, (tf.Tensor, tf.Variable)):
            try:
                token_ids = tf.ragged.constant(token_ids)
                if isinstance(token_ids, tf.RaggedTensor):
                    token_ids = token_ids.to_tensor(PAD_ID)
            except (TypeError, ValueError) as error:
                raise TypeError(
                    "`token_ids` must be integer ids (list, array or tensor). "
                    f"Received: token_ids={token_ids!r}"
                ) from error
        if not token_ids.dtype.is_integer:
            raise TypeError(
                "`token_ids` must be integer ids, received dtype "
                f"{token_ids.dtype.name}. Received: token_ids={token_ids!r}"
            )
        token_ids = tf.cast(token_ids, tf.int32)
        rank = token_ids.shape.rank
        if rank == 1:
            return self._detokenize_batch(token_ids[tf.newaxis])[0]
        if rank == 2:
            return self._detokenize_batch(token_ids)
        raise ValueError(
            "`token_ids` must be 1-D (one sequence) or 2-D (a batch). "
            f"Received: token_ids with shape {token_ids.shape}"
        )

    def __call__(self, strings):
        """Same as `tokenize`."""
        return self.tokenize(strings)

    # ---- files

    def save(self, directory: str | os.PathLike) -> None:
        """Writes `vocabulary.txt` (one token per line) and `tokenizer.json`.

        Args:
            directory: created if needed; local path or any `tf.io.gfile` URL.
        """
        directory = os.fspath(directory)
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(os.path.join(directory, _VOCABULARY_FILE), "w") as f:
            f.write("".join(f"{token}\n" for token in self._tokens))
        config = {
            "format": _FORMAT,
            # A tokenizer read from version 1 is written back as version 1.
            "format_version": 1 if self.reserved_tokens == FRAMING_TOKENS else 2,
            "lowercase": self.lowercase,
            "vocabulary_size": self.vocabulary_size,
            "reserved_tokens": list(self.reserved_tokens),
        }
        with tf.io.gfile.GFile(os.path.join(directory, _CONFIG_FILE), "w") as f:
            f.write(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SubwordTokenizer:
        """Reads a tokenizer written by `save`.

        Tokenizers of format_version 1 (saved before `[CLS]`, `[SEP]` and
        `[MASK]` were reserved) load with their ids unchanged; see
        `reserved_tokens`.

        Raises:
            FileNotFoundError: `directory` or one of its two files is missing.
            ValueError: a file is corrupt (bad JSON, wrong format, vocabulary
                that does not match the config).
        """
        directory = os.fspath(directory)
        if not tf.io.gfile.isdir(directory):
            raise FileNotFoundError(
                f"No tokenizer directory at {directory!r} (it does not exist or is "
                "not a directory). Write one with `tokenizer.save(directory)`."
            )
        config_path = os.path.join(directory, _CONFIG_FILE)
        vocabulary_path = os.path.join(directory, _VOCABULARY_FILE)
        for path in (config_path, vocabulary_path):
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(
                    f"{path!r} is missing: {directory!r} is not a complete "
                    "tokenizer directory (expected "
                    f"{_CONFIG_FILE} and {_VOCABULARY_FILE})."
                )
        try:
            with tf.io.gfile.GFile(config_path, "rb") as f:
                config = json.loads(f.read().decode("utf-8"))
            if not isinstance(config, dict) or config.get("format") != _FORMAT:
                raise ValueError(f"'format' is not {_FORMAT!r}")
            version = config.get("format_version")
            if version not in _RESERVED_BY_VERSION:
                raise ValueError(f"unsupported format_version {version!r}")
            reserved = _RESERVED_BY_VERSION[version]
            lowercase = config.get("lowercase")
            if not isinstance(lowercase, bool):
                raise ValueError("'lowercase' must be true or false")
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(
                f"Corrupt tokenizer config {config_path!r}: {error}"
            ) from error
        try:
            with tf.io.gfile.GFile(vocabulary_path, "rb") as f:
                text = f.read().decode("utf-8")
            if text and not text.endswith("\n"):
                raise ValueError("the file does not end with a newline (truncated?)")
            tokens = text.split("\n")[:-1]
            if len(tokens) != config.get("vocabulary_size"):
                raise ValueError(
                    f"it has {len(tokens)} tokens, {config_path!r} says "
                    f"{config.get('vocabulary_size')!r}"
                )
            tokens = _check_vocabulary(tokens, "the vocabulary", reserved)
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"Corrupt vocabulary {vocabulary_path!r}: {error}"
            ) from error
        return cls(tokens, lowercase=lowercase, _reserved_tokens=reserved)


def load_tokenizer(directory: str | os.PathLike) -> SubwordTokenizer:
    """Same as `SubwordTokenizer.load(directory)`."""
    return SubwordTokenizer.load(directory)


def _as_text_dataset(argument: str, texts) -> tf.data.Dataset:
    """A dataset of 1-D string batches from a dataset or an iterable of str."""
    if isinstance(texts, tf.data.Dataset):
        spec = texts.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.dtype != tf.string:
            raise TypeError(
                f"`{argument}` must be a dataset of strings. Received a dataset "
                f"with element_spec={spec!r} (for pairs, map to one side first, "
                "e.g. `pairs.map(lambda source, target: source)`)."
            )
        if spec.shape.rank == 0:
            return texts.batch(1024)
        if spec.shape.rank == 1:
            return texts
        raise TypeError(
            f"`{argument}` must hold scalar strings or 1-D batches of strings. "
            f"Received element_spec={spec!r}"
        )
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise TypeError(
            f"`{argument}` must be a tf.data.Dataset of strings or a list of str. "
            f"Received: {argument}={texts!r}"
        )
    tensor = _as_string_tensor(argument, list(texts))
    return tf.data.Dataset.from_tensor_slices(tf.reshape(tensor, [-1])).batch(1024)


def train_tokenizer(
    texts,
    vocabulary_size: int = 1000,
    *,
    lowercase: bool = True,
    max_subword_length: int = 16,
    name: str | None = None,
) -> SubwordTokenizer:
    """Trains a WordPiece vocabulary on local text; deterministic.

    Counts the words of `normalize` and runs tensorflow-text's WordPiece
    learner (the one behind keras_nlp's `compute_word_piece_vocabulary`),
    called directly so that `max_subword_length` can be set: the learner's
    time grows with the square of the word length, and German writes a number
    as one long compound word. Every character of `texts` gets a token, so
    any text made of those characters round-trips without `[UNK]`.

    Args:
        texts: a `tf.data.Dataset` of strings (scalars or 1-D batches) or a
            list of `str`.
        vocabulary_size: upper bound on the number of tokens, reserved tokens
            included. The learner returns fewer when the text is small: a
            piece needs about ten occurrences to earn a token. Defaults to 1000.
        lowercase: passed to `SubwordTokenizer`. Defaults to `True`.
        max_subword_length: longest piece, in characters; longer words are
            learned from their pieces. Defaults to 16.
        name: optional module name.

    Returns:
        A `SubwordTokenizer`.

    Example:

    >>> pairs = load_translation("mixed", split="train")
    >>> source_tokenizer = train_tokenizer(pairs.map(lambda s, t: s), 1000)
    """
    from tensorflow_text.tools.wordpiece_vocab import (
        wordpiece_tokenizer_learner_lib as learner,
    )

    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
        raise TypeError(
            "`vocabulary_size` must be an int. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    minimum = len(RESERVED_TOKENS) + 1
    if vocabulary_size < minimum:
        raise ValueError(
            f"`vocabulary_size` must be >= {minimum}. "
            f"Received: vocabulary_size={vocabulary_size}"
        )
    if (
        isinstance(max_subword_length, bool)
        or not isinstance(max_subword_length, int)
        or max_subword_length < 1
    ):
        raise ValueError(
            "`max_subword_length` must be an int >= 1. "
            f"Received: max_subword_length={max_subword_length!r}"
        )

    def count_batch(batch):
        unique = tf.unique_with_counts(_WORDS[lowercase](batch).flat_values)
        return unique.y, unique.count

    counts: collections.Counter = collections.Counter()
    for words, word_counts in (
        _as_text_dataset("texts", texts).map(count_batch).as_numpy_iterator()
    ):
        counts.update(dict(zip(words.tolist(), word_counts.tolist(), strict=True)))
    if not counts:
        raise ValueError(
            "`texts` holds no words (empty or whitespace only): cannot train a "
            "vocabulary."
        )
    word_counts = {word.decode("utf-8"): count for word, count in counts.items()}
    vocabulary = learner.learn(
        word_counts,
        vocab_size=vocabulary_size,
        reserved_tokens=list(RESERVED_TOKENS),
        max_token_length=max_subword_length,
        include_joiner_token=True,
        joiner=SUFFIX_INDICATOR,
    )
    vocabulary = _with_every_character(vocabulary, word_counts, vocabulary_size)
    return SubwordTokenizer(vocabulary, lowercase=lowercase, name=name)


def _with_every_character(vocabulary, word_counts, vocabulary_size):
    """Adds the characters the learner skipped (it ignores long words).

    Each character gets a word-initial token and a `##` suffix token. Longer
    pieces are dropped from the end to stay within `vocabulary_size`.
    """
    present = set(vocabulary)
    characters = sorted({character for word in word_counts for character in word})
    missing = [c for c in characters if c not in present]
    missing += [f"{SUFFIX_INDICATOR}{c}" for c in characters]
    missing = [token for token in missing if token not in present]
    if not missing:
        return vocabulary[:vocabulary_size]
    vocabulary = list(vocabulary)
    while len(vocabulary) + len(missing) > vocabulary_size:
        last_piece = max(
            (i for i, t in enumerate(vocabulary) if len(t.removeprefix("##")) > 1),
            default=None,
        )
        if last_piece is None:  # only characters left: keep them all
            break
        del vocabulary[last_piece]
    return vocabulary + missing


def train_tokenizers(
    pairs: tf.data.Dataset,
    source_vocabulary_size: int = 1000,
    target_vocabulary_size: int = 1000,
    *,
    lowercase: bool = True,
) -> tuple[SubwordTokenizer, SubwordTokenizer]:
    """Trains one tokenizer per side of a `(source, target)` dataset.

    Args:
        pairs: a `tf.data.Dataset` of `(source, target)` strings, e.g. from
            `load_translation`.
        source_vocabulary_size: see `train_tokenizer`. Defaults to 1000.
        target_vocabulary_size: see `train_tokenizer`. Defaults to 1000.
        lowercase: see `train_tokenizer`. Defaults to `True`.

    Returns:
        `(source_tokenizer, target_tokenizer)`.
    """
    _check_pairs("pairs", pairs)
    return (
        train_tokenizer(
            pairs.map(lambda source, target: source),
            source_vocabulary_size,
            lowercase=lowercase,
            name="source_tokenizer",
        ),
        train_tokenizer(
            pairs.map(lambda source, target: target),
            target_vocabulary_size,
            lowercase=lowercase,
            name="target_tokenizer",
        ),
    )


def _check_pairs(argument: str, pairs) -> None:
    spec = getattr(pairs, "element_spec", None)
    if (
        not isinstance(pairs, tf.data.Dataset)
        or not isinstance(spec, tuple)
        or len(spec) != 2
        or not all(
            isinstance(s, tf.TensorSpec) and s.dtype == tf.string and s.shape.rank == 0
            for s in spec
        )
    ):
        raise TypeError(
            f"`{argument}` must be a tf.data.Dataset of (source, target) scalar "
            f"strings, as load_translation returns. Received: {pairs!r}"
            + (f" with element_spec={spec!r}" if spec is not None else "")
        )


# --------------------------------------------------------------------------
# Word-level tokenizer (lesson 01)


@keras.saving.register_keras_serializable(package="tf_transformer")
def frame_words(strings):
    """Standardization for `word_level_vectorizer`: canonical words, framed.

    Puts the text in `normalize` form with one space between every token
    (punctuation included) and adds `[START]` and `[END]` around it.
    """
    strings = _clean(strings, lowercase=True)
    strings = tf.strings.regex_replace(strings, _NON_WORD_CHARACTER, r" \0 ")
    strings = tf.strings.strip(tf.strings.regex_replace(strings, " +", " "))
    return tf.strings.join(
        [RESERVED_TOKENS[START_ID], strings, RESERVED_TOKENS[END_ID]], " "
    )


def word_level_vectorizer(
    texts,
    max_tokens: int | None = None,
    output_sequence_length: int | None = None,
) -> keras.layers.TextVectorization:
    """A Keras `TextVectorization` with one id per whole word.

    Words are those of `normalize` (lowercase, punctuation as separate
    tokens), each text is framed by `[START]` and `[END]`, and the ids follow
    the project convention: Keras writes the padding token as `''` instead of
    `[PAD]`, but it has id 0, and `[UNK]=1, [START]=2, [END]=3`. The other
    words are sorted by decreasing frequency, ties alphabetically, so the
    vocabulary is deterministic.

    Args:
        texts: a `tf.data.Dataset` of strings or a list of `str`.
        max_tokens: keep at most this many tokens (reserved ones included).
            Defaults to `None`: every word.
        output_sequence_length: pad or truncate outputs to this length.
            Defaults to `None`: pad to the longest text of each batch.

    Returns:
        A `keras.layers.TextVectorization` layer, ready to call on strings.

    Example:

    >>> vectorizer = word_level_vectorizer(["vingt et un", "vingt-deux"])
    >>> vectorizer(["vingt et un"]).numpy()  # '', [UNK], [START], [END], vingt, -, ...
    array([[2, 4, 7, 8, 3]])
    """
    if max_tokens is not None and (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or max_tokens < len(FRAMING_TOKENS)
    ):
        raise ValueError(
            f"`max_tokens` must be None or an int >= {len(FRAMING_TOKENS)}. "
            f"Received: max_tokens={max_tokens!r}"
        )
    counts: dict[str, int] = {}
    for batch in _as_text_dataset("texts", texts):
        words = tf.strings.split(frame_words(batch))
        for word in words.flat_values.numpy().tolist():
            counts[word] = counts.get(word, 0) + 1
    reserved = {token.encode() for token in RESERVED_TOKENS}  # never words
    words = sorted(
        (word for word in counts if word not in reserved),
        key=lambda word: (-counts[word], word),
    )
    vocabulary = [RESERVED_TOKENS[START_ID], RESERVED_TOKENS[END_ID]]
    vocabulary += [word.decode("utf-8") for word in words]
    if max_tokens is not None:
        vocabulary = vocabulary[: max_tokens - 2]  # Keras adds '' and [UNK]
    return keras.layers.TextVectorization(
        standardize=frame_words,
        split="whitespace",
        output_mode="int",
        output_sequence_length=output_sequence_length,
        vocabulary=vocabulary,
    )
