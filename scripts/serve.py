"""`streamlit run` with the libraries every first page needs already imported (#14: the first visit after a
start is usable in < 3 s).

`app.py` imports transformers (see the comment there) and every page imports pandas: ~1 s on an idle 2-core
CPU, 3–4 s on a busy one, paid by whoever opened the first page. Imported here, before the server binds its
port, that time moves to the start-up (the health check answers after it) and no visitor waits for it.
Arguments are `streamlit`'s own: `python scripts/serve.py run app.py --server.port 8501`.
"""
import sys

import pandas  # noqa: F401
import transformers  # noqa: F401

if __name__ == "__main__":
    from streamlit.web.cli import main

    sys.exit(main())
