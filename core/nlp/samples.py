"""Sample documents for the Summarize & QA page, written for this project (no outside text).

Each has questions with gold answers (SQuAD style: the answer is a span of the document) and a
reference summary written by hand, so the page can score answers and summaries out of the box.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """A document with questions -> gold answers and a hand-written reference summary."""

    title: str
    document: str
    questions: dict[str, tuple[str, ...]]
    summary: str


SAMPLES: dict[str, Sample] = {s.title: s for s in (
    Sample(
        "Bread",
        "Bread is one of the oldest prepared foods. Flour and water are mixed into a dough, which is "
        "kneaded to develop gluten, a network of proteins that traps gas. Yeast feeds on the sugars in "
        "the flour and releases carbon dioxide, so the dough rises. Most home bakers let the dough rise "
        "for one to two hours at room temperature. The loaf is then baked in a hot oven, usually between "
        "200 and 230 degrees Celsius. The crust turns brown because of the Maillard reaction between "
        "sugars and amino acids. Sourdough uses a culture of wild yeast and lactic acid bacteria instead "
        "of baker's yeast, which gives it a sour taste.",
        {
            "What makes the dough rise?": ("carbon dioxide", "Yeast feeds on the sugars in the flour and "
                                           "releases carbon dioxide"),
            "How long does the dough rise?": ("one to two hours",),
            "Why does the crust turn brown?": ("the Maillard reaction", "Maillard reaction between sugars "
                                               "and amino acids"),
            "What gives sourdough its taste?": ("a culture of wild yeast and lactic acid bacteria",),
        },
        "Bread dough of flour and water is kneaded to develop gluten and rises as yeast releases carbon "
        "dioxide. It is baked in a hot oven, where the Maillard reaction browns the crust.",
    ),
    Sample(
        "Lighthouses",
        "A lighthouse is a tower that carries a lamp to guide ships at night. The most famous early "
        "example was the Pharos of Alexandria, built in Egypt in the third century BC. For centuries "
        "lighthouses burned wood, coal or oil. In 1822 the French physicist Augustin Fresnel designed "
        "a lens made of concentric rings of glass prisms. His lens bent the light into a narrow beam "
        "that could be seen more than 30 kilometres away. Each lighthouse flashes in its own pattern, "
        "called its characteristic, so sailors can tell one from another. Today most lighthouses are "
        "automated and many are kept as museums.",
        {
            "Who designed the lens with rings of glass prisms?": ("Augustin Fresnel", "Fresnel"),
            "When was the Fresnel lens designed?": ("1822", "In 1822"),
            "Where was the Pharos built?": ("Egypt", "in Egypt"),
            "How far could the beam be seen?": ("more than 30 kilometres", "30 kilometres"),
            "How can sailors tell lighthouses apart?": ("Each lighthouse flashes in its own pattern",),
        },
        "Lighthouses guide ships with a lamp. Fresnel's 1822 lens of glass prisms made a beam visible "
        "over 30 kilometres, and each light flashes in its own pattern. Most are now automated.",
    ),
    Sample(
        "Backpropagation",
        "A neural network learns by adjusting its weights to reduce a loss. Backpropagation computes "
        "the gradient of the loss with respect to every weight by applying the chain rule from the "
        "output back to the input. PyTorch records the operations of the forward pass in a graph, and "
        "calling backward on the loss walks that graph in reverse. Each weight's gradient is stored in "
        "its grad attribute. An optimizer such as stochastic gradient descent then moves each weight a "
        "small step against its gradient. The size of that step is set by the learning rate. Gradients "
        "add up across calls, so they are reset to zero before each new batch.",
        {
            "How does backpropagation compute gradients?": ("by applying the chain rule",
                                                            "applying the chain rule from the output back "
                                                            "to the input"),
            "Where is a weight's gradient stored?": ("its grad attribute", "grad attribute"),
            "What sets the size of the step?": ("the learning rate",),
            "Why are gradients reset to zero?": ("Gradients add up across calls",),
        },
        "Backpropagation uses the chain rule to compute the gradient of the loss for every weight. "
        "PyTorch records the forward pass in a graph and backward walks it in reverse; an optimizer "
        "then steps each weight against its gradient, scaled by the learning rate.",
    ),
    Sample(
        "茶 (Tea, Chinese)",
        "茶起源于中国，已有几千年的历史。茶叶来自茶树的嫩叶和芽。绿茶不经过发酵，所以保持了叶子的绿色。"
        "红茶经过完全发酵，味道更浓。乌龙茶是半发酵茶，主要产于福建和台湾。今天，茶是世界上仅次于水的第二大饮料。",
        {
            "乌龙茶主要产于哪里？": ("福建和台湾",),
            "绿茶为什么保持绿色？": ("绿茶不经过发酵",),
        },
        "茶起源于中国。绿茶不发酵，红茶完全发酵，乌龙茶半发酵。茶是仅次于水的第二大饮料。",
    ),
)}


def qa_rows() -> list[dict[str, object]]:
    """Every sample question as a (context, question, answers) row, for batch evaluation."""
    return [{"context": s.document, "question": q, "answers": list(a)}
            for s in SAMPLES.values() for q, a in s.questions.items()]


def summary_rows() -> list[dict[str, str]]:
    """Every sample as a (document, summary) row, for batch evaluation."""
    return [{"document": s.document, "summary": s.summary} for s in SAMPLES.values()]
