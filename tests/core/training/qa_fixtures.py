"""Hand-made SQuAD-format rows (no package ships a usable SQuAD sample offline), saved in the DatasetStore."""
from core.settings import Settings

CAPITALS = [("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Peru", "Lima"), ("Japan", "Tokyo"),
            ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Cuba", "Havana")]
QA_COLUMNS = {"question": "question", "context": "context", "answers": "answers"}


def qa_rows(n: int = 40) -> dict[str, list]:
    """n rows: "What is the capital of X?" over a two-sentence context, answers as SQuAD dicts."""
    rows: dict[str, list] = {"question": [], "context": [], "answers": []}
    for i in range(n):
        country, city = CAPITALS[i % len(CAPITALS)]
        context = f"{country} is a country with a long history. Its capital is {city}, a large and busy city."
        rows["question"].append(f"What is the capital of {country}?")
        rows["context"].append(context)
        rows["answers"].append({"text": [city], "answer_start": [context.index(city)]})
    return rows


def qa_dataset(settings: Settings, name: str = "tiny-qa", rows: dict | None = None):
    import datasets

    from core.data import DatasetStore

    ds = datasets.Dataset.from_dict(rows or qa_rows())
    return DatasetStore(settings.datasets_dir).save(ds, name, "test fixture")
