"""The network, metrics and training pieces of an exported from-scratch run (core.scratch.export_code has the
head and the data). Each mirrors core.scratch.models / metrics and the engine's TrainingArguments, so the script's
evaluation loss equals the run's."""

# --- the network -----------------------------------------------------------------------------------------------
MEAN_LOSS = '''

def mean_loss(logits, labels, num_items_in_batch=None):
    """Cross-entropy averaged over the labels of the whole optimizer step. Seeing **kwargs in forward, the
    Trainer passes num_items_in_batch (the labels of every accumulated micro-batch) and stops dividing by the
    accumulation steps itself."""
    if labels is None:
        return None
    logits, labels = logits.reshape(-1, logits.size(-1)), labels.reshape(-1)
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(logits, labels, ignore_index=-100)
    return nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum") / num_items_in_batch


def torch_default_init(module):
    """PyTorch's own initialisation (Kaiming-uniform for Linear and Conv2d), which these small nets are tuned for;
    transformers' post_init calls it on every module."""
    if hasattr(module, "reset_parameters") and not isinstance(module, nn.TransformerEncoderLayer):
        with torch.no_grad():
            module.reset_parameters()
'''

POSITIONS = '''

class PositionalEncoding(nn.Module):
    """Sinusoidal positions added to the embeddings (Vaswani et al., 2017)."""

    def __init__(self, d_model, max_len, dropout=0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + self.pe[: x.size(1)].to(x.dtype))
'''

MEAN_POOL = '''

class MeanPool(nn.Module):
    """(B, T, E) -> (B, E): the mean over the real (unpadded) positions."""

    def forward(self, x, mask):
        m = mask[:, : x.size(1)].unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1)
'''

RUN_LAYER = '''
SEQUENCE_OUTPUT = {sequence}  # recurrent layers that hand on every position, not their last state


def run_layer(i, module, x, mask):
    """Layer i's forward; `mask` (B, T) is 1 on real tokens. Recurrent layers read packed sequences (padding
    never enters them), attention ignores padded positions."""
    if isinstance(module, nn.RNNBase):
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h = module(packed)
        if i in SEQUENCE_OUTPUT:
            return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
        h = h[0] if isinstance(h, tuple) else h  # an LSTM returns (h_n, c_n)
        dirs = 2 if module.bidirectional else 1
        return torch.cat([h[-dirs + d] for d in range(dirs)], dim=-1)  # the last layer's state, each direction
    if isinstance(module, nn.TransformerEncoderLayer):
        return module(x, src_key_padding_mask=~mask[:, : x.size(1)].bool())
    if isinstance(module, MeanPool):
        return module(x, mask)
    return module(x)
'''

CLASSIFIER = '''

def make_layers():
    """The layer list with every input size filled in from the shape the layer before produces."""
    return [
{layers}
    ]


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(make_layers())

    def forward(self, x, mask=None):
{loop}        return x


class NetConfig(PretrainedConfig):
    model_type = "scratch-classifier"


class Net(PreTrainedModel):
    """The layer stack as a transformers model, so the Trainer, save_pretrained and from_pretrained serve it."""

    config_class = NetConfig
    main_input_name = "{main_input}"

    def __init__(self, config):
        super().__init__(config)
        self.body = Stack()
{buffers}        self.post_init()

    def _init_weights(self, module):
        torch_default_init(module)

{forward}

torch.manual_seed(SEED)  # right before the network is built, as in Torch Lab: the same initial weights
model = Net(NetConfig(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                      label2id={{name: i for i, name in enumerate(LABELS)}}))
'''
NUMBERS_LOOP = """\
        for layer in self.layers:
            x = layer(x)
"""
TEXT_LOOP = """\
        for i, layer in enumerate(self.layers):
            x = run_layer(i, layer, x, mask)
"""
NUMBERS_BUFFERS = '''\
        self.register_buffer("feature_mean", torch.tensor(MEAN, dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(STD, dtype=torch.float32))
'''
NUMBERS_FORWARD = '''\
    def forward(self, inputs=None, labels=None, num_items_in_batch=None, **kwargs):
        x = (inputs.float() - self.feature_mean) / self.feature_std
        logits = self.body(x.view(x.size(0), {shape}))  # one example: {shape_text}
        return SequenceClassifierOutput(loss=mean_loss(logits, labels, num_items_in_batch), logits=logits)
'''
TEXT_FORWARD = '''\
    def forward(self, input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **kwargs):
        logits = self.body(input_ids, attention_mask)
        return SequenceClassifierOutput(loss=mean_loss(logits, labels, num_items_in_batch), logits=logits)
'''

SEQ2SEQ = '''

class Seq2SeqConfig(PretrainedConfig):
    model_type = "scratch-seq2seq"

    def __init__(self, vocab_size=13, d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                 dim_feedforward=128, dropout=0.1, max_len=32, norm_first=True, **kwargs):
        self.vocab_size, self.d_model, self.nhead = vocab_size, d_model, nhead
        self.num_encoder_layers, self.num_decoder_layers = num_encoder_layers, num_decoder_layers
        self.dim_feedforward, self.dropout, self.max_len = dim_feedforward, dropout, max_len
        self.norm_first = norm_first  # layer norm before attention / feed-forward (pre-LN)
        super().__init__(**kwargs)


class Seq2SeqTransformer(PreTrainedModel):
    """PyTorch's nn.Transformer with shared token embeddings, sinusoidal positions and a linear generator."""

    config_class = Seq2SeqConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.positions = PositionalEncoding(config.d_model, config.max_len + 2, config.dropout)
        self.transformer = nn.Transformer(config.d_model, config.nhead, config.num_encoder_layers,
                                          config.num_decoder_layers, config.dim_feedforward, config.dropout,
                                          batch_first=True, norm_first=config.norm_first)
        # padded positions stay in the output (no nested tensors)
        self.transformer.encoder.enable_nested_tensor = self.transformer.encoder.use_nested_tensor = False
        self.generator = nn.Linear(config.d_model, config.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        torch_default_init(module)

    def forward(self, input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **kwargs):
        # teacher forcing: the decoder reads the start id, then the targets shifted right by one
        dec = torch.cat([torch.full_like(labels[:, :1], self.config.bos_token_id), labels[:, :-1]], dim=1)
        dec = dec.masked_fill(dec == -100, self.config.pad_token_id)
        src, tgt = self.positions(self.embed(input_ids)), self.positions(self.embed(dec))
        n = tgt.size(1)
        causal = torch.ones(n, n, dtype=torch.bool, device=tgt.device).triu(1)  # True = may not attend
        src_pad = ~attention_mask.bool()
        tgt_pad = dec == self.config.pad_token_id
        tgt_pad[:, 0] = False  # the start token is never padding
        hidden = self.transformer(src, tgt, tgt_mask=causal, src_key_padding_mask=src_pad,
                                  tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad, tgt_is_causal=True)
        logits = self.generator(hidden)
        return Seq2SeqLMOutput(loss=mean_loss(logits, labels, num_items_in_batch), logits=logits)


torch.manual_seed(SEED)  # right before the network is built, as in Torch Lab: the same initial weights
model = Seq2SeqTransformer(Seq2SeqConfig(
{config}
    pad_token_id=PAD, bos_token_id=START, eos_token_id=END))
'''

GPT = '''
config = GPT2Config(
{config}
)
torch.manual_seed(SEED)  # right before the network is built, as in Torch Lab: the same initial weights
model = GPT2LMHeadModel(config)
# transformers 5 names the loss after the class and "GPT2LMHeadModel" matches none: without this the Trainer
# divides the causal loss by all T labels of a row instead of the T - 1 tokens it predicts (eval_loss reads low)
model.loss_type = "ForCausalLM"
'''

PRETRAINED = '''
# the first Embedding starts from MiniLM-L6's word-embedding table (30,522 × 384, rows in BERT's uncased WordPiece
# order: the tokenizer's), read from the safetensors file of the all-MiniLM-L6-v2 that Torch Lab packages
MINILM = {path!r}
embedding = next(m for m in model.body.layers if isinstance(m, nn.Embedding))
with safe_open(MINILM + "/model.safetensors", "pt") as f, torch.no_grad():
    embedding.weight.copy_(f.get_tensor("embeddings.word_embeddings.weight").float())
embedding.weight.requires_grad_({trainable})  # {note}
'''

# --- metrics ---------------------------------------------------------------------------------------------------
CLASS_METRICS = '''

def compute_metrics(eval_pred):
    """Accuracy and macro precision / recall / F1 on the evaluation split."""
    preds, labels = np.argmax(eval_pred.predictions, axis=-1), eval_pred.label_ids
    p, r, f, _ = precision_recall_fscore_support(labels, preds, average="macro", labels=list(range(len(LABELS))),
                                                 zero_division=0)
    return {"accuracy": float((preds == labels).mean()), "precision": float(p), "recall": float(r), "f1": float(f)}


extra = {}
'''

TOKEN_METRICS = '''

def compute_metrics(eval_pred):
    """Share of target tokens predicted right (teacher forcing), and of whole sequences with every token right."""
    preds, labels = np.argmax(eval_pred.predictions, axis=-1), eval_pred.label_ids
    valid = labels != -100
    right = (preds == labels) & valid
    return {"token_accuracy": float(right.sum() / max(1, valid.sum())),
            "sequence_accuracy": float((right | ~valid).all(-1).mean())}


extra = {}
'''

LM_METRICS = '''

def token_scores(logits, labels):
    """Each position's next-token loss and whether its top guess was right (B, T - 1 each): what evaluation
    keeps instead of every logit of the evaluation set."""
    logits, target = logits[:, :-1].float(), labels[:, 1:]
    nll = nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
    return nll, (logits.argmax(-1) == target).float()


def compute_metrics(eval_pred):
    """Perplexity per token (exp of the mean next-token loss over every held-out target) and next-token accuracy."""
    (nll, hit), labels = eval_pred.predictions, eval_pred.label_ids
    valid = labels[:, 1:] != -100
    return {"perplexity": math.exp(min(float(nll[valid].mean()), 700.0)), "token_accuracy": float(hit[valid].mean()),
            "tokens": int(valid.sum())}


extra = {"preprocess_logits_for_metrics": token_scores}
'''

# --- training --------------------------------------------------------------------------------------------------
TRAIN = '''
# --- training: the run's settings, through the Hugging Face Trainer ------------------------------------------
args = TrainingArguments(
    output_dir=cli.output,
    per_device_train_batch_size={batch_size},
    per_device_eval_batch_size={eval_batch_size},
    gradient_accumulation_steps={grad_accumulation},
    learning_rate={learning_rate!r},
    weight_decay={weight_decay!r},
    num_train_epochs={epochs!r},
    max_steps=cli.max_steps,
    warmup_steps={warmup!r},
    lr_scheduler_type={scheduler!r},
    optim={optim!r},
    bf16={bf16},
    fp16={fp16},
    seed=SEED,
    logging_steps={logging_steps},
    eval_strategy="steps",
    eval_steps={eval_steps},
{save}    dataloader_num_workers=0,
    report_to="none",
)
{trainer_class}trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collate,
                  compute_metrics=compute_metrics{processing}{callbacks}, **extra)
result = trainer.train()
metrics = trainer.evaluate()
print("train", json.dumps(result.metrics))
print("eval", json.dumps(metrics))
trainer.save_model(cli.output + "/model")
'''
VALIDATION_TRAINER = '''

class Trainer(Trainer):  # inside train() it evaluates on the validation split, everywhere else on the test split
    """The eval points, early stopping and the best checkpoint judge `validation`; the final evaluate() scores
    the test split (eval_dataset) once, for the epoch the validation split chose."""

    def train(self, *args, **kwargs):
        self.on_validation = True
        try:
            return super().train(*args, **kwargs)
        finally:
            self.on_validation = False

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        if eval_dataset is None and getattr(self, "on_validation", False):
            eval_dataset = validation
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
'''
SAVE_NONE = '    save_strategy="no",\n'
SAVE_BEST = ('    save_strategy="steps",\n    save_steps={eval_steps},\n    save_total_limit=2,\n'
             '    load_best_model_at_end=True,  # early stopping keeps the best evaluation\n'
             '    metric_for_best_model="eval_loss",\n')

# torch's own schedules (core.training.schedules: the engine builds them where the Trainer builds its scheduler);
# the same code as the fine-tuning export's (core.training.export), which core.scratch may not import: it imports
# the runner, and the runner imports core.scratch
SCHEDULE_CODE = {
    "step": "torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, num_training_steps // 3), gamma=0.1)",
    "exponential": "torch.optim.lr_scheduler.ExponentialLR(\n                optimizer, gamma=0.01 ** (1 / max(1, "
                   "num_training_steps - 1)))",
    "one_cycle": "torch.optim.lr_scheduler.OneCycleLR(\n                optimizer, max_lr=[g[\"lr\"] for g in "
                 "optimizer.param_groups], total_steps=max(2, num_training_steps),\n                pct_start=0.3, "
                 "div_factor=25.0, final_div_factor=1e4, cycle_momentum=False)",
}
TORCH_SCHEDULE = """

class Trainer(Trainer):  # the {name} schedule is torch's own: built where the Trainer builds its scheduler
    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            optimizer = optimizer or self.optimizer
            self.lr_scheduler = {code}
            self._created_lr_scheduler = True
        return self.lr_scheduler


"""
