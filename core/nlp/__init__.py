"""NLP: the MiniLM sentence encoder, question answering, summaries, samples and metrics.

Offline both tasks run on the packaged all-MiniLM-L6-v2 sentence embeddings; with a checkpoint
folder or a hub id they run on the model classes directly. `types` holds what every part shares.

    >>> from core.nlp import answer
    >>> a = answer("Where is the tower?", "The tower is in Paris. Bread is baked daily.")  # doctest: +SKIP
    >>> a.text, a.start, a.end  # doctest: +SKIP
    ('The tower is in Paris.', 0, 22)
"""
from core.nlp.encoder import (
    MAX_SPAN_CHARS_NO_SPACE,
    MAX_SPAN_WORDS,
    TASKS,
    Encoder,
    LoadedModel,
    check_text,
    classify,
    load_encoder,
    load_model,
    script_warning,
    sentence_spans,
)
from core.nlp.metrics import (
    QA_COLUMNS,
    ROUGE_TYPES,
    SUMMARY_COLUMNS,
    TOKENIZERS,
    answer_tokens,
    eval_columns,
    evaluate_qa,
    evaluate_summaries,
    exact_match_f1,
    mean_scores,
    no_space_share,
    normalize_answer,
    parse_answers,
    rouge,
    rouge_details,
)
from core.nlp.qa import (
    ANSWER_TYPES,
    GRANULARITIES,
    TYPE_BONUS,
    answer,
    answer_type,
    clause_spans,
    embedding_answer,
    span_answer,
)
from core.nlp.samples import (
    SAMPLES,
    Sample,
    qa_rows,
    summary_rows,
)
from core.nlp.summaries import (
    METHODS,
    REDUNDANT,
    abstractive_summary,
    centrality,
    extractive_summary,
    summarize,
)
from core.nlp.types import (
    Answer,
    NLPError,
    Span,
    Summary,
)

__all__ = [
    "ANSWER_TYPES",
    "Answer",
    "Encoder",
    "GRANULARITIES",
    "LoadedModel",
    "MAX_SPAN_CHARS_NO_SPACE",
    "MAX_SPAN_WORDS",
    "METHODS",
    "NLPError",
    "QA_COLUMNS",
    "REDUNDANT",
    "ROUGE_TYPES",
    "SAMPLES",
    "SUMMARY_COLUMNS",
    "Sample",
    "Span",
    "Summary",
    "TASKS",
    "TOKENIZERS",
    "TYPE_BONUS",
    "abstractive_summary",
    "answer",
    "answer_tokens",
    "answer_type",
    "centrality",
    "check_text",
    "classify",
    "clause_spans",
    "embedding_answer",
    "eval_columns",
    "evaluate_qa",
    "evaluate_summaries",
    "exact_match_f1",
    "extractive_summary",
    "load_encoder",
    "load_model",
    "mean_scores",
    "no_space_share",
    "normalize_answer",
    "parse_answers",
    "qa_rows",
    "rouge",
    "rouge_details",
    "script_warning",
    "sentence_spans",
    "span_answer",
    "summarize",
    "summary_rows",
]
