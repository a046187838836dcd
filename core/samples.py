"""Sample files Torch Lab makes from its packages: `python -m core.samples` writes them."""
from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
DRUG_REVIEWS_CSV = SAMPLES_DIR / "drug_reviews.csv"


def drug_reviews_csv(path: Path = DRUG_REVIEWS_CSV) -> Path:
    """Write the drug-review sample as CSV (once) and return its path."""
    if path.is_file():
        return path
    from core.assets import drug_reviews

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    drug_reviews().to_csv(tmp, index=False)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(f"wrote {drug_reviews_csv()}")
