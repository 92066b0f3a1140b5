-- Every `chainrisk run` and `watch` pass: its outcome, its phases' times and what it asked of the RPCs.
--
-- Grain: one row per run_id.
-- Key columns:
--   status              ok, partial (some markets failed), failed, running, interrupted (a run that died)
--   seconds             wall time from start to finish (NULL while running); index_seconds the index phase's
--   markets, markets_failed, wallets, liquidatable, alerts_sent
--                       markets configured and failed, wallets scored, liquidatable ones, alert events sent
--   rpc_requests        HTTP requests the run's markets and look-through sent, retries included, and since stop 68
--                       the chains made ready before their markets were read side by side (NULL before stop 64's
--                       runs, or when nothing was indexed); rpc_calls the JSON-RPC calls in them: what a provider
--                       bills and rate-limits
--   line                the run's summary in words, as `chainrisk run` printed it
-- Reads: runs.
WITH runs_ AS (
    SELECT *, json_valid(summary) AS detailed FROM runs
),

usage AS (
    SELECT
        run_id,
        coalesce(list_sum(CAST(json_extract(summary, '$.indexed[*].rpc_requests') AS BIGINT[])), 0)
        + coalesce(list_sum(CAST(json_extract(summary, '$.ready[*].rpc_requests') AS BIGINT[])), 0)
        + coalesce(list_sum(CAST(json_extract(summary, '$.chains[*].rpc_requests') AS BIGINT[])), 0) AS requests,
        coalesce(list_sum(CAST(json_extract(summary, '$.indexed[*].rpc_calls') AS BIGINT[])), 0)
        + coalesce(list_sum(CAST(json_extract(summary, '$.ready[*].rpc_calls') AS BIGINT[])), 0)
        + coalesce(list_sum(CAST(json_extract(summary, '$.chains[*].rpc_calls') AS BIGINT[])), 0) AS calls
    FROM runs_
    WHERE detailed
),

final AS (
    SELECT
        r.run_id,
        r.status,
        r.started_at,
        r.finished_at,
        epoch(r.finished_at) - epoch(r.started_at) AS seconds,
        CASE WHEN r.detailed THEN CAST(json_extract(r.summary, '$.index_seconds') AS DOUBLE) END AS index_seconds,
        r.markets,
        r.markets_failed,
        r.wallets,
        r.liquidatable,
        coalesce(r.alerts_sent, 0) AS alerts_sent,
        nullif(u.requests, 0) AS rpc_requests,
        nullif(u.calls, 0) AS rpc_calls,
        CASE WHEN r.detailed THEN json_extract_string(r.summary, '$.line') ELSE r.summary END AS line
    FROM runs_ AS r
    LEFT JOIN usage AS u ON u.run_id = r.run_id
)

SELECT * FROM final
