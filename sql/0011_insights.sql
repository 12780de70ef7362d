-- Insights: arm capabilities in the stored tier table, and live accuracy of predictions.
--
-- Capabilities come from the tiers file (`capabilities = [...]` on a row); kept here so the
-- `tasksage insights` commands can read what each arm declares without the file.
ALTER TABLE tier_defaults ADD COLUMN capabilities text[] NOT NULL DEFAULT '{}';

-- Each outcome scored once against the prediction made for its task, in the transaction that
-- applies it to the statistics. One row per (hour, arm, kind, calibration bin) holds sums, so
-- any window (last hour, day, week, all time) is a sum of rows, and the table grows with hours
-- x arms x kinds x bins, not with outcomes.
CREATE TABLE accuracy_buckets (
    hour                    timestamptz NOT NULL,  -- finished_at truncated to the hour (UTC)
    agent                   text NOT NULL,
    model                   text NOT NULL,
    kind                    text NOT NULL,         -- '' for tasks without a kind
    bin                     smallint NOT NULL CHECK (bin BETWEEN 0 AND 9),  -- predicted probability decile
    outcomes                bigint NOT NULL,
    successes               bigint NOT NULL,
    probability_sum         double precision NOT NULL,
    brier_sum               double precision NOT NULL,
    log_loss_sum            double precision NOT NULL,
    duration_n              bigint NOT NULL,
    duration_abs_error_sum  double precision NOT NULL,  -- |predicted - actual| in ms
    duration_log_error_sum  double precision NOT NULL,  -- |log10(predicted / actual)|
    cost_n                  bigint NOT NULL,
    cost_abs_error_sum      double precision NOT NULL,  -- |predicted - actual| in USD
    PRIMARY KEY (hour, agent, model, kind, bin)
);
