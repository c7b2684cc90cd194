"""Published results used as fixtures by more than one test module."""

from __future__ import annotations

# BERT-large's GLUE test results (Devlin et al. 2019, Table 1; second metrics of MRPC,
# STS-B and QQP from the GLUE leaderboard), on the catalog's 0-1 scale. GLUE score: 80.5.
BERT_LARGE_GLUE: dict[str, dict[str, float]] = {
    "cola": {"mcc": 0.605},
    "sst2": {"accuracy": 0.949},
    "mrpc": {"f1": 0.893, "accuracy": 0.854},
    "stsb": {"pearson": 0.876, "spearman": 0.865},
    "qqp": {"f1": 0.721, "accuracy": 0.893},
    "mnli_matched": {"accuracy": 0.867},
    "mnli_mismatched": {"accuracy": 0.859},
    "qnli": {"accuracy": 0.927},
    "rte": {"accuracy": 0.701},
    "wnli": {"accuracy": 0.651},
}
