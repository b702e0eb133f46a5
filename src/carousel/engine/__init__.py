"""The gold engine: build the gold tables for a window from one per-customer state, reading only what is new.

One function, `build_gold`, serves every caller: the daily job's gold task after the declarative
pipeline (`carousel-gold`), the local runner, `carousel build` (a backfill), `carousel advance`
(the rolling update) and the benchmarks. Its inputs are `actions_silver` and `impressions_bronze`
(created with a change feed); it keeps five tables:

- `customer_histories_gold` and `training_examples_gold`, partitioned by `dt`;
- `item_vocabulary_gold`: stable embedding indices, grown by each update's new rows (`carousel.vocabulary`);
- `customer_action_state`: one row per customer, its actions that a later day can still show,
  as of one day (`carousel.incremental`);
- `gold_progress`: one row per finished step, what it read and left (the versions of its inputs
  and of the two tables it changes in place, the state's day, the days it built).

Why a step after the declarative pipeline rather than a dataset of it: a new day costs far less
than the window only when its histories start from yesterday's state. A pipeline dataset cannot
read its own previous version (the graph refuses cycles); a materialized view is recomputed from
all its inputs on open-source Spark; and a streaming flow can only group by customer-day behind a
watermark, which would hold each day back an update and drop late rows without a trace.

The days a step builds, all within the window:
- the window's impression days not in gold yet (in daily operation: the newest day only);
- built days whose impressions gained rows since the last step (read from the change feed);
- built days after the day of an action that arrived once the state had passed its day;
- every day of the window when both bounds are given (a backfill).
When that is exactly the day after the state's, the state advances by one day of actions with a
MERGE of the customers that changed, and nothing else is read; otherwise the days are built in one
pass over silver and the state is built again. Days before the window (less `retention_days`) are
deleted. What the step reads to plan comes from the change feed since the last step and from its
own progress, never from a scan of the history.

A step killed halfway leaves the progress of the last finished one: the next step first brings
the state and the vocabulary back to the versions that progress names (Delta RESTORE), then does
the work again.
"""

from carousel.engine.build import MissingGoldInputError, build_gold, merge_day_into_state
from carousel.engine.tables import DAILY, FULL, GOLD_STEP, NOTHING, GoldReport, GoldTables, Window
from carousel.engine.vocabulary_step import MissingVocabularyError, rerank_vocabulary

__all__ = [
    "DAILY",
    "FULL",
    "GOLD_STEP",
    "NOTHING",
    "GoldReport",
    "GoldTables",
    "MissingGoldInputError",
    "MissingVocabularyError",
    "Window",
    "build_gold",
    "merge_day_into_state",
    "rerank_vocabulary",
]
