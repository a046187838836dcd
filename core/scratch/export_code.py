"""The pieces of an exported from-scratch run (core.scratch.export puts them together), here its head and data
preparation; the network, metrics and training are in core.scratch.export_network. Plain PyTorch and
transformers code, each piece the same computation as the part of core.scratch it mirrors, so the script's
evaluation loss equals the run's (tests/core/scratch/test_export.py runs them)."""

HEAD = '''\
"""Reproduce Torch Lab run {run_id!r} with plain PyTorch and transformers: {name}.

{what}
Everything the run did is in this file: the data preparation, the network as torch.nn modules inside a
transformers PreTrainedModel (the Hugging Face docs' recipe for custom models) and the Trainer with the run's
settings. Nothing is imported from Torch Lab: it runs from any folder, with the packages of Torch Lab's
requirements.txt. With the same seed on the same kind of device it ends at the run's evaluation loss.

    python {filename}                  # the whole run
    python {filename} --max-steps 20   # a shorter one (the learning-rate schedule is built for 20 steps)
"""
{stdlib}
{third_party}
parser = argparse.ArgumentParser(description="Reproduce Torch Lab run {run_id}")
parser.add_argument("--max-steps", type=int, default={max_steps}, help="optimizer steps; -1 trains {epochs} epochs")
parser.add_argument("--output", default={output}, help="folder for checkpoints and the trained model")
# run as a program: the command line; imported or exec'd: the run's own settings
cli = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
SEED = {seed}
set_seed(SEED)
'''

# --- data ------------------------------------------------------------------------------------------------------
SKLEARN = '''
# --- data: scikit-learn's bundled {dataset} (no download), split as Torch Lab splits it -----------------------
bunch = sklearn.datasets.{loader}()
x, y = np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target)
LABELS = [str(n) for n in bunch.target_names]
x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size={eval_fraction!r}, random_state=SEED,
                                                    stratify=y)
{caps}'''

STORE = '''
# --- data: Torch Lab dataset {dataset!r}, a datasets.DatasetDict saved with save_to_disk ---------------------
DATA = {path!r}
LABEL = {label!r}
LABELS = {labels!r}  # class names in class-id order

data = load_from_disk(DATA)
train_name = "train" if "train" in data else list(data)[0]
eval_name = next((s for s in ("validation", "test", "eval") if s in data and s != train_name), None)


def encode_labels(ds):
    """Class ids 0..k-1 in `labels`, a ClassLabel column (so the split below can stratify by it)."""
    feature = ds.features[LABEL]
    names = feature.names if isinstance(feature, ClassLabel) else None
    index = {{name: i for i, name in enumerate(LABELS)}}

    def ids(batch):
        keys = [names[v] if names else v if isinstance(v, str) else str(int(v)) for v in batch[LABEL]]
        return {{"labels": [index[k] for k in keys]}}

    return ds.map(ids, batched=True).cast_column("labels", ClassLabel(names=LABELS))


train = encode_labels(data[train_name])
if eval_name:
    evaluation = encode_labels(data[eval_name])
else:  # hold out a share of the rows, stratified by class where every class can be
    n_eval = max(1, round(len(train) * {eval_fraction!r}))
    counts = Counter(train["labels"])
    stratify = "labels" if min(counts.values()) >= 2 and n_eval >= len(counts) else None
    parts = train.train_test_split(test_size=n_eval, seed=SEED, stratify_by_column=stratify)
    train, evaluation = parts["train"], parts["test"]
{caps}'''

CARVE_ROWS = '''
# a validation split carved from the training rows: evaluated while training (the eval points, early stopping,
# the best checkpoint) so that the test split ("evaluation") is scored once, at the end, for the epoch it chose
VALIDATION_FRACTION = {fraction!r}
labels = list(train["labels"])
n_val = round(len(labels) * VALIDATION_FRACTION)
counts = Counter(labels)
stratify = labels if min(counts.values()) >= 2 and n_val >= len(counts) else None  # by class where each can be
keep, val_rows = train_test_split(list(range(len(labels))), test_size=n_val, random_state=SEED, stratify=stratify)
train, validation = train.select(sorted(keep)), train.select(sorted(val_rows))
'''

IMAGES = '''
# --- images: decoded and resized as Torch Lab decodes them (Pillow; grey stays grey, RGB once one has colour) --
SIZE = {size}  # every image resized to SIZE × SIZE
GREY_MODES = {grey!r}
ROOTS = {roots!r}  # the folders this server reads images from: a path (or a link) leading out is left out


def inside(path):
    """The real path of `path`, or None when it leads out of ROOTS (links are resolved before the check)."""
    real = os.path.realpath(path)
    return real if any(real == r or real.startswith(r + os.sep) for r in ROOTS) else None


def decode(source):
    """One image (a file path or a file-like object of its bytes) as uint8 SIZE × SIZE, None if unreadable."""
    try:
        img = Image.open(source)
        if img.width * img.height > {max_pixels}:  # Torch Lab's cap on one file's pixels
            return None
        img.draft(img.mode if img.mode in ("L", "RGB") else None, (SIZE, SIZE))  # JPEG: decode at a smaller scale
        img.load()
    except Exception:  # Pillow raises many kinds for a corrupt file
        return None
    return np.asarray(img.convert("L" if img.mode in GREY_MODES else "RGB").resize((SIZE, SIZE)))


def to_pixels(images):
    """(images, channels × SIZE × SIZE) float32 in [0, 1], flattened: 3 channels as soon as one image has colour."""
    channels = 3 if any(a.ndim == 3 for a in images) else 1
    out = np.empty((len(images), channels, SIZE, SIZE), dtype=np.float32)
    for j, a in enumerate(images):
        out[j] = (a.transpose(2, 0, 1) if a.ndim == 3 else a[None]) / np.float32(255.0)
    return out.reshape(len(images), -1)
'''

IMAGE_FOLDER = '''
# --- data: the image folder {root}, one sub-folder per class (torchvision's ImageFolder layout) ---
ROOT = {root!r}
EXTENSIONS = {extensions!r}

classes = sorted(d.name for d in os.scandir(ROOT) if d.is_dir() and not d.name.startswith("."))
images, labels = [], []
for i, name in enumerate(classes):
    for dirpath, dirnames, names in os.walk(os.path.join(ROOT, name)):  # links to folders are not followed
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for n in sorted(names):
            if n.startswith(".") or not n.lower().endswith(EXTENSIONS):
                continue
            path = inside(os.path.join(dirpath, n))
            a = decode(path) if path else None
            if a is not None:
                images.append(a)
                labels.append(i)
present = sorted(set(labels))  # a class folder without a readable image is not a class
LABELS = [classes[i] for i in present]
x, y = to_pixels(images), np.asarray([present.index(v) for v in labels], dtype=np.int64)
n_eval = round(len(y) * {eval_fraction!r})
stratify = y if np.bincount(y).min() >= 2 and n_eval >= len(present) else None  # by class where each can be
train_rows, eval_rows = train_test_split(np.arange(len(y)), test_size=n_eval, random_state=SEED, stratify=stratify)
train_rows, eval_rows = np.sort(train_rows), np.sort(eval_rows)
x_train, y_train, x_eval, y_eval = x[train_rows], y[train_rows], x[eval_rows], y[eval_rows]
{caps}'''

IMAGE_COLUMN = '''
COLUMN = {column!r}  # the column holding the images: paths to image files, or their bytes


def source(cell):
    """What Pillow opens for a cell (its bytes, or the file its path names; a relative path is looked up in each of
    ROOTS in turn), or None: an empty cell, a missing file, a path leading out of ROOTS."""
    if isinstance(cell, dict):  # a datasets Image value, undecoded: the bytes when embedded, else the file's path
        cell = cell.get("bytes") or cell.get("path")
    if isinstance(cell, bytes) and cell:
        return io.BytesIO(cell)
    if not isinstance(cell, str) or not cell.strip():
        return None
    path = cell.strip()
    if not os.path.isabs(path):
        path = next((os.path.join(r, path) for r in ROOTS if os.path.lexists(os.path.join(r, path))),
                    os.path.join(ROOTS[0], path))
    path = inside(path)
    return path if path and os.path.isfile(path) else None


def cells(ds):
    if isinstance(ds.features[COLUMN], ImageFeature):  # its encoded bytes and path, not decoded PIL images
        ds = ds.cast_column(COLUMN, ImageFeature(decode=False))
    return list(ds[COLUMN])


# every row's image, train then evaluation; a row without a readable image is left out, as Torch Lab does
decoded = [decode(s) if s is not None else None for s in map(source, cells(train) + cells(evaluation))]
kept = np.asarray([i for i, a in enumerate(decoded) if a is not None])
x = to_pixels([decoded[i] for i in kept])
y = np.asarray(list(train["labels"]) + list(evaluation["labels"]), dtype=np.int64)[kept]
in_train = kept < len(train)
x_train, y_train, x_eval, y_eval = x[in_train], y[in_train], x[~in_train], y[~in_train]
{caps}'''

STORE_NUMBERS = '''
FEATURES = {features!r}


def numbers(ds):
    """The feature columns as one row of numbers per example, and the class ids."""
    x = np.asarray([ds[c] for c in FEATURES], dtype=np.float64).T.reshape(len(ds), len(FEATURES))
    return x, np.asarray(ds["labels"])


(x_train, y_train), (x_eval, y_eval) = numbers(train), numbers(evaluation)
'''

NUMBERS = '''
# standardised with the training rows' mean and spread (kept in the model, so it applies at inference too)
MEAN, STD = x_train.astype(np.float64).mean(0), x_train.astype(np.float64).std(0)
STD[STD < 1e-6] = 1.0  # a constant feature (a blank pixel) stays 0 after centring


class Rows(torch.utils.data.Dataset):
    """A torch Dataset: example i is a dict of tensors; the Trainer's default collate function stacks them."""

    def __init__(self, x, y):
        self.x, self.y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {{"inputs": self.x[i], "labels": self.y[i]}}


train, evaluation = Rows(x_train, y_train), Rows(x_eval, y_eval)
collate = None  # default_data_collator
'''

LM_TEXTS = '''
# --- data: the {column!r} column of Torch Lab dataset {dataset!r} (saved with save_to_disk) -----------------
DATA, TEXT, MAX_LENGTH = {path!r}, {column!r}, {max_length}
data = load_from_disk(DATA)
train_name = "train" if "train" in data else list(data)[0]
eval_name = next((s for s in ("validation", "test", "eval") if s in data and s != train_name), None)
texts = [t for t in data[train_name][TEXT] if isinstance(t, str) and t.strip()]
if eval_name:
    held = [t for t in data[eval_name][TEXT] if isinstance(t, str) and t.strip()]
else:  # hold out a share of the texts, shuffled with the seed
    random.Random(SEED).shuffle(texts)
    n = max(1, round(len(texts) * {eval_fraction!r}))
    texts, held = texts[n:], texts[:n]
{caps}'''

CARVE_TEXTS = '''
# a validation split carved from the training texts (a seeded shuffle picks them): evaluated while training (the
# eval points, early stopping, the best checkpoint) so that the test texts ("held") are scored once, at the end
VALIDATION_FRACTION = {fraction!r}
order = list(range(len(texts)))
random.Random(SEED).shuffle(order)
picked = set(order[: round(len(texts) * VALIDATION_FRACTION)])
val_texts = [t for i, t in enumerate(texts) if i in picked]
texts = [t for i, t in enumerate(texts) if i not in picked]
'''

TRAIN_BPE = '''
EOS = "<|endoftext|>"


def train_bpe(texts, vocab_size):
    """A byte-level BPE (GPT-2 style) trained on the training texts with the tokenizers library."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS)


tokenizer = train_bpe({texts}, {vocab_size})
assert len(tokenizer) == {vocab}, f"the BPE learnt {{len(tokenizer)}} tokens, the run's {vocab}"
'''

SAVED_TOKENIZER = '''
TOKENIZER = {folder!r}  # the run's tokenizer ({name}), saved beside its model
tokenizer = PreTrainedTokenizerFast.from_pretrained(TOKENIZER)
assert len(tokenizer) == {vocab}
'''

TEXT = '''
TEXT, MAX_LENGTH = {column!r}, {max_length}
PAD = tokenizer.pad_token_id


def tokenize(ds):
    """Token ids, truncated to MAX_LENGTH and not padded: the collate function pads each batch."""
    def ids(batch):
        texts = [t if isinstance(t, str) else "" for t in batch[TEXT]]
        return {{"input_ids": tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]}}

    ds = ds.map(ids, batched=True)
    return ds.remove_columns([c for c in ds.column_names if c not in ("input_ids", "labels")])


train, evaluation = tokenize(train), tokenize(evaluation)
'''

LM_ROWS = '''
PAD, END = tokenizer.pad_token_id, tokenizer.eos_token_id


def lm_rows(texts):
    """One example per text: its tokens and an end-of-text token, cut at MAX_LENGTH (padded per batch)."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return Dataset.from_dict({"input_ids": [(x + [END])[:MAX_LENGTH] for x in ids]})


train, evaluation = lm_rows(texts), lm_rows(held)
'''

PAD_COLLATE = '''

def collate(rows):
    """A batch: input_ids padded with PAD to the longest row, attention_mask 1 on real tokens,
    {labels_doc}."""
    n = max(1, max(len(r["input_ids"]) for r in rows))
    ids = torch.full((len(rows), n), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r["input_ids"])] = torch.tensor(list(r["input_ids"]), dtype=torch.long)
        mask[i, : len(r["input_ids"])] = 1
    labels = {labels}
    return {{"input_ids": ids, "attention_mask": mask, "labels": labels}}
'''
CLASS_LABELS = 'torch.tensor([int(r["labels"]) for r in rows], dtype=torch.long)'
LM_LABELS = "ids.masked_fill(mask == 0, -100)  # the next-token targets; padding is never one"

REVERSE = '''
# --- data: the toy reverse task (random symbol sequences -> the same reversed), made here with the seed ------
SYMBOLS, MIN_LEN, MAX_LEN = {symbols}, {min_len}, {max_len}
PAD, START, END = 0, 1, 2  # the symbols are ids 3..
rng = random.Random(SEED)


def reverse_rows(n):
    src = [[rng.randrange(3, 3 + SYMBOLS) for _ in range(rng.randint(MIN_LEN, MAX_LEN))] for _ in range(n)]
    return Dataset.from_dict({{"input_ids": src, "labels": [s[::-1] + [END] for s in src]}})


train, evaluation = reverse_rows({train_size}), reverse_rows({eval_size})
{caps}

def collate(rows):
    """Sources padded with PAD (+ attention_mask); target labels padded with -100 (never a target)."""
    n, m = max(len(r["input_ids"]) for r in rows), max(len(r["labels"]) for r in rows)
    ids = torch.full((len(rows), n), PAD, dtype=torch.long)
    labels = torch.full((len(rows), m), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r["input_ids"])] = torch.tensor(list(r["input_ids"]))
        labels[i, : len(r["labels"])] = torch.tensor(list(r["labels"]))
    return {{"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}}
'''
